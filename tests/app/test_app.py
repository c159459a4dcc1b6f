"""The lab through its API, as a browser would drive it (gradio_client, explicit api_names)."""
import socket

import pytest
from gradio_client import Client

from app.controller import LabController
from app.ui import build_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
    ctrl = LabController(resolution=64)
    demo = build_app(ctrl)
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path_factory.mktemp("dl")))
    demo.close()
    ctrl.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_reset_step_and_goal(client):
    from PIL import Image
    client.predict(api_name="/new_session")
    head, wrist, state, status = client.predict("place_empty_cup", "easy", 3, api_name="/sim_reset")
    assert Image.open(head).size == (192, 192) and Image.open(wrist).size == (192, 192)
    assert "step 0/" in status and len(state) == 5
    *_, state2, status2 = client.predict(api_name="/sim_step_expert")
    assert "step 10/" in status2 and state2 != state
    *_, status3 = client.predict(api_name="/sim_run_expert")
    assert "success: yes" in status3
    goal_head, goal_wrist = client.predict("place_empty_cup", "easy", 3, api_name="/sim_goal")
    assert Image.open(goal_head).size == (192, 192)


def test_bad_input_is_a_readable_error(client):
    client.predict(api_name="/new_session")
    with pytest.raises(Exception, match="Reset the simulator first"):
        client.predict(api_name="/sim_step_expert")
    with pytest.raises(Exception, match="less than minimum value 0"):
        client.predict("plating", "easy", -4, api_name="/sim_reset")
