"""Running an exported model, torch-free: the code that eval.py, the demo, the benches and the
deployment package share (the package ships these files byte for byte, so nothing can drift).

    metadata       model.json read and checked against the IR
    compile        compiling under a precision hint: the one compile path (openvino_core: the one Core)
    frames         the one resize rule, the centre crop, frames to the IR's input formats
    window         the clip window over a stream, the average of the last windows' scores
    labels         scores to probabilities, the "no action" rule
    segments       runs of equal labels, the smoothed segment timeline
    model          ExportedModel: read, check, compile, run one clip
    recognizer     frames in, one prediction per window out
    errors         UserError, the base of every one-line error

Nothing here imports torch, or anything of action_rec outside action_rec.runtime.
"""
