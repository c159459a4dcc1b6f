"""The lab through its API, as a browser would drive it (gradio_client, explicit api_names)."""
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from a2g_core.store import crud
from app.ui import page_answers
from tests.app.conftest import free_port


@pytest.fixture
def client(lab):
    _, url, dl = lab
    c = Client(url, verbose=False, download_files=str(dl))
    c.predict(api_name="/new_session")
    return c


def test_goal_imagine_execute_review_label(lab, client):
    ctrl = lab[0]
    head, wrist, state, status = client.predict("place_empty_cup", "easy", 3, api_name="/sim_reset")
    assert Image.open(head).size == (256, 256) and "step 0/" in status and len(state) == 5
    library, current, preview = client.predict("place_empty_cup", "easy", 3, api_name="/goal_expert")
    assert "expert" in current and len(preview) == 2
    *galleries, timeline, msg = client.predict(api_name="/imagine")
    assert [len(g) for g in galleries] == [4, 4] and "proximal" in msg      # 2 + 2 frames per view
    assert "+4 steps" in galleries[0][0]["caption"]
    *_, status = client.predict(True, 6, api_name="/exec_step")
    assert "step 6/" in status and "recording rollout (6 steps)" in status
    *_, status = client.predict(True, 4, api_name="/exec_step")     # fewer actions of this chunk
    assert "step 10/" in status
    with pytest.raises(Exception, match="Actions per chunk must be 1..8"):
        client.predict(True, 9, api_name="/exec_step")
    *_, status = client.predict(True, 2, api_name="/exec_step")
    assert "step 12/" in status
    assert "recorded" in client.predict(api_name="/exec_stop")
    client.predict("all", "all", "all", api_name="/review_list")
    rows = ctrl.rollouts()
    assert rows and rows[0].steps == 12 and rows[0].sim_success is False
    rid = rows[0].id
    head_video, wrist_video, plot, summary, label, note = client.predict(rid, api_name="/review_load")
    assert f"#{rid}" in summary and "3 chunks" in summary
    video = head_video["video"] if isinstance(head_video, dict) else head_video
    assert str(video).endswith(".mp4") and plot is not None
    assert "labelled failure" in client.predict(rid, "failure", "missed the cup", api_name="/review_label")
    assert ctrl.rollouts(label="failure")[0].note == "missed the cup"


def test_busy_simulator_says_so(lab):
    ctrl = lab[0]
    sid = ctrl.new_session()
    ctrl.sim_reset(sid, "place_empty_cup", "easy", 4)
    ctrl.goal_expert(sid, "place_empty_cup", "easy", 4)
    run = ctrl.exec_run(sid, False, max_steps=12)
    next(run)                                             # a rollout is running in this simulator
    with pytest.raises(Exception, match="busy with a rollout"):
        ctrl.exec_step(sid)
    ctrl.exec_stop(sid)
    views = list(run)
    assert views[-1]["ended"]                              # stopped, and recorded
    assert ctrl.exec_step(sid, False)["status"]            # free again


def test_uploads_are_validated(lab, client, tmp_path):
    ctrl = lab[0]
    before = len(ctrl.goal_library())
    junk = tmp_path / "photo.png"
    junk.write_bytes(b"this is not a picture")
    with pytest.raises(Exception, match="could not be decoded"):
        client.predict(handle_file(str(junk)), None, "", api_name="/goal_upload")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(11 * 2**20))
    with pytest.raises(Exception, match="limit is 10 MB"):
        client.predict(handle_file(str(big)), None, "", api_name="/goal_upload")
    assert len(ctrl.goal_library()) == before               # nothing stored
    ok = tmp_path / "goal.jpg"
    Image.fromarray(np.full((120, 200, 3), 200, np.uint8)).save(ok)
    _, current, preview = client.predict(handle_file(str(ok)), None, "grey", api_name="/goal_upload")
    assert "uploaded" in current and len(preview) == 1
    assert np.asarray(Image.open(ctrl.goal_library()[0]["images"]["head"])).shape == (64, 64, 3)


def test_teleop_and_demo(lab, client):
    ctrl = lab[0]
    _, _, state0, _ = client.predict("plating", "easy", 1, api_name="/sim_reset")
    client.predict(api_name="/demo_start")
    _, _, state1, _ = client.predict(api_name="/teleop_x_plus")
    assert state1[0] > state0[0] + 0.01
    client.predict(api_name="/teleop_close")
    msg = client.predict(api_name="/demo_save")
    assert "Saved 4 steps" in msg and "goal #" in msg
    assert (ctrl.root / "demos" / "dataset.json").exists()


def test_bad_input_is_a_readable_error(client):
    with pytest.raises(Exception, match="Reset the simulator first"):
        client.predict(True, 6, api_name="/exec_step")
    with pytest.raises(Exception, match="less than minimum value 0"):
        client.predict("plating", "easy", -4, api_name="/sim_reset")
    client.predict("plating", "easy", 0, api_name="/sim_reset")
    with pytest.raises(Exception, match="Choose a goal first"):
        client.predict(api_name="/imagine")


def test_improvement_round_from_the_page(lab, client, tmp_path):
    from a2g_core.data.generate import generate
    ctrl = lab[0]
    form = ("place_empty_cup", "easy", "all", 1, 5, 1, 4, 1, 1)
    with pytest.raises(Exception, match="learning rate must be a number above 0"):
        client.predict(*form, "chunk", 0, "", 0.5, "", 0, api_name="/improve_start")
    with pytest.raises(Exception, match="is not a dataset folder"):
        client.predict(*form, "chunk", 3e-4, str(tmp_path), 0.5, "", 0, api_name="/improve_start")
    with pytest.raises(Exception, match="scenario is a scene's seed, a whole number of at least 0, not '-3'"):
        client.predict(*form, "chunk", 3e-4, "", 0.5, "-3", 0, api_name="/improve_start")
    with pytest.raises(Exception, match="Give the share of a successful rollout's samples that keep its goal"):
        client.predict(*form, "chunk", 3e-4, "", 0.5, "", None, api_name="/improve_start")
    generate(tmp_path / "expert", tasks=["place_empty_cup"], modes=["easy"], episodes=1, resolution=64)
    msg, _ = client.predict(*form, "future", 1e-3, str(tmp_path / "expert"), 0.25, " 7 ", 0.5,
                            api_name="/improve_start")
    assert msg.startswith("Started")
    with pytest.raises(Exception, match="already running"):
        client.predict(*form, "chunk", 3e-4, "", 0.5, "", 0, api_name="/improve_start")
    deadline = time.time() + 300
    while time.time() < deadline:
        state, log, table, plot, adapter, _ = client.predict(api_name="/improve_status")
        if "finished" in state or "failed" in state:
            break
        time.sleep(2)
    assert "finished" in state, log
    rows = table["data"]
    assert rows[-1][3] == "done" and rows[-1][10].endswith("round_001")
    assert rows[-1][1] == f"{ctrl.policy_dir.name}-place_empty_cup-easy-all-future-keep0.5-lr0.001-anchor0.25-scene7"
    r = ctrl.improve_status()["rounds"][-1]
    assert (r.config["relabel"], r.config["keep_goal"], r.config["lr"], r.config["anchor_fraction"],
            r.config["scenario"]) == ("future", 0.5, 1e-3, 0.25, 7)
    assert {ro.seed for ro in crud.list_rollouts(ctrl.engine, round_id=r.id)} == {7}
    table, _, _ = client.predict(api_name="/benchmarks")      # the round's evaluation says it played one scene
    assert any(row[2:4] == ["place_empty_cup", "easy, scene 7"] for row in table["data"])
    assert r.config["anchor"] == str(tmp_path / "expert") and r.metrics["anchor_episodes"] == 1
    assert "round_001" in client.predict(str(ctrl.policy_dir), rows[-1][10], api_name="/use_policy")
    assert ctrl.adapter.endswith("round_001")


def test_bridge_from_the_lab(lab, client):
    from a2g_core.robot.robot import SimRobot
    from a2g_core.robot.runner import run_robot
    ctrl = lab[0]
    client.predict("place_empty_cup", "easy", 5, api_name="/sim_reset")
    client.predict("place_empty_cup", "easy", 5, api_name="/goal_expert")
    port = free_port()
    status = client.predict(port, api_name="/bridge_start")
    assert status["gate"] == "paused" and status["has_goal"]
    client.predict(api_name="/bridge_arm")
    with SimRobot("place_empty_cup", "easy", seed=5, resolution=64, max_steps=18) as robot:
        out = run_robot(robot, f"ws://127.0.0.1:{port}", realtime=False, log=lambda m: None)
    assert out["steps"] == 18
    deadline = time.time() + 10
    while not ctrl.rollouts(task="place_empty_cup") or ctrl.rollouts()[0].target != "robot":
        assert time.time() < deadline, "the bridge rollout was not recorded"
        time.sleep(0.2)
    frames, status = client.predict(api_name="/bridge_view")    # recorded after each reply, before the rollout ends
    assert len(frames) == 2 and status["served"] == 3
    assert ctrl.rollouts()[0].steps == 12


def test_app_py_serves_behind_its_password(tmp_path, tiny_policy_dir):
    """``python app.py`` with A2G_LAB_AUTH: it keeps serving once the page answers, and the app's config asks for the
    password."""
    port = free_port()
    env = {**os.environ, "A2G_LAB_AUTH": "operator:secret", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--policy", str(tiny_policy_dir),
                             "--root", str(tmp_path / "lab")], cwd=Path(__file__).resolve().parents[2], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while "Running on local URL" not in (line := proc.stdout.readline()):
            assert line and time.time() < deadline, "app.py exited or never said where it serves"
        assert page_answers(url, wait_s=60)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "config", timeout=10)
        assert err.value.code == 401
        time.sleep(1)
        assert proc.poll() is None, "app.py stopped serving after it started"
    finally:
        proc.kill()
        proc.wait()
