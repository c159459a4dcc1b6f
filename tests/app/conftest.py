import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_policy_dir):
    """A launched lab on the toy policy: (controller, url, download folder)."""
    from app.controller import LabController
    from app.ui import build_app, serve
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
    ctrl = LabController(tiny_policy_dir, tmp_path_factory.mktemp("lab"))
    demo = build_app(ctrl).queue()
    url = serve(demo, "127.0.0.1", free_port(), quiet=True)
    yield ctrl, url, tmp_path_factory.mktemp("dl")
    demo.close()
    ctrl.close()
    mp.undo()
