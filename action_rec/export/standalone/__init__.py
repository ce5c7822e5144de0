"""Files that ship in the deployment package as they are (see export/deploy.py): `recognize.py`, a
command line over `action_rec.runtime` (shipped beside it), needs only openvino, opencv-python and
numpy, never the rest of action_rec."""
