"""The run folder: finished runs kept, new names when asked, the divergence and signal guard."""

import json
import math

import pytest

from recipe.errors import SetupError
from recipe.runs import StopOnSignal, make_guard, new_folder_beside, prepare_run_dir, write_json


def test_guard_stops_without_saving_on_nan_loss():
    from transformers import TrainerControl, TrainerState

    guard = make_guard(StopOnSignal())
    control, state = TrainerControl(should_save=True), TrainerState(global_step=7)
    guard.on_log(None, state, control, logs={"loss": math.nan})
    assert control.should_training_stop and not control.should_save and guard.bad_loss_step == 7
    control = TrainerControl()
    guard.on_log(None, state, control, logs={"loss": 0.5, "grad_norm": 1.0})
    assert not control.should_training_stop


def test_guard_saves_and_stops_after_a_signal():
    from transformers import TrainerControl, TrainerState

    stop = StopOnSignal()
    stop.received = "SIGTERM"
    control = TrainerControl()
    make_guard(stop).on_step_end(None, TrainerState(global_step=3), control)
    assert control.should_save and control.should_training_stop


def test_finished_run_is_refused_or_gets_a_new_name(tmp_path, capsys):
    finished = tmp_path / "smoke"
    finished.mkdir()
    (finished / "status.json").write_text(json.dumps({"status": "finished"}))
    with pytest.raises(SetupError, match="holds a finished run; it is left untouched"):
        prepare_run_dir(str(tmp_path), "smoke", "refuse")
    run_dir, resume = prepare_run_dir(str(tmp_path), "smoke", "new")
    assert run_dir == tmp_path / "smoke-2" and run_dir.is_dir() and resume is None


def test_unwritable_output_folder_is_refused(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(SetupError, match="cannot write to the output folder"):
        prepare_run_dir(str(tmp_path / "a-file" / "sub"), "run", "refuse")


def test_jobs_on_an_earlier_run_get_fresh_folders(tmp_path):
    source = tmp_path / "run"
    assert new_folder_beside(source, str(tmp_path), "eval") == tmp_path / "run-eval"
    assert new_folder_beside(source, str(tmp_path), "eval") == tmp_path / "run-eval-2"


def test_write_json_leaves_no_partial_file(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
