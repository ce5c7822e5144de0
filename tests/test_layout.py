"""Module names say their job: no two modules of the package share a name for different jobs."""

from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "action_rec"
# One name, one job in several places: each subpackage's command line; the user-error base (the
# runtime's copy ships without the toolkit).
SHARED = {"__init__.py", "cli.py", "errors.py"}


def test_no_two_modules_share_a_name_for_different_jobs():
    places = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        if "standalone" not in path.parts:  # the deployment package's own script
            places[path.name].append(str(path.relative_to(PACKAGE)))
    shared = {name: paths for name, paths in places.items() if len(paths) > 1 and name not in SHARED}
    assert not shared


def test_renamed_modules_are_gone_and_their_successors_import():
    import action_rec.export.model_json
    import action_rec.inference.video_file
    import action_rec.models.action_model
    import action_rec.training.run_state  # noqa: F401

    for old in (
        "training/checkpoint.py",
        "models/recognizer.py",
        "inference/recognizer.py",
        "export/metadata.py",
    ):
        assert not (PACKAGE / old).exists(), old
