"""Gradio UI: an app factory and one builder per tab (event wiring at the bottom of each builder)."""
from __future__ import annotations

import gradio as gr

from a2g_core.sim import MODES, TASKS
from app.controller import LabController, LabError


def _guard(fn):
    """Turn operator errors into a readable message instead of a stack trace."""
    def wrapped(*args):
        try:
            return fn(*args)
        except LabError as e:
            raise gr.Error(str(e)) from None
        except ValueError as e:
            raise gr.Error(str(e)) from None
    wrapped.__name__ = fn.__name__
    return wrapped


def create_sim_tab(ctrl: LabController, sid: gr.State) -> dict:
    with gr.Row():
        task = gr.Dropdown(list(TASKS), value="place_empty_cup", label="Task")
        mode = gr.Radio(list(MODES), value="easy", label="Mode")
        seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
    with gr.Row():
        reset = gr.Button("Reset", variant="primary")
        step = gr.Button("Expert: 10 steps")
        run = gr.Button("Expert: run to the end")
        show_goal = gr.Button("Show goal for this seed")
    status = gr.Markdown("Press **Reset** to load the scene.")
    with gr.Row():
        head = gr.Image(label="head camera", interactive=False, height=300, format="png")
        wrist = gr.Image(label="wrist camera", interactive=False, height=300, format="png")
        goal_head = gr.Image(label="goal: head", interactive=False, height=300, format="png")
        goal_wrist = gr.Image(label="goal: wrist", interactive=False, height=300, format="png")
    state = gr.JSON(label="proprio state [x, y, z, yaw, grip]")

    def on_reset(sid_, task_, mode_, seed_):
        v = ctrl.sim_reset(sid_, task_, mode_, seed_)
        return v["head"], v["wrist"], v["state"], v["status"]

    def on_step(sid_, n):
        v = ctrl.sim_step_expert(sid_, n)
        return v["head"], v["wrist"], v["state"], v["status"]

    def on_goal(task_, mode_, seed_):
        g = ctrl.goal(task_, mode_, seed_)
        return g["head"], g["wrist"]

    views = [head, wrist, state, status]
    reset.click(_guard(on_reset), [sid, task, mode, seed], views, api_name="sim_reset")
    step.click(_guard(lambda s: on_step(s, 10)), [sid], views, api_name="sim_step_expert")
    run.click(_guard(lambda s: on_step(s, 10_000)), [sid], views, api_name="sim_run_expert")
    show_goal.click(_guard(on_goal), [task, mode, seed], [goal_head, goal_wrist], api_name="sim_goal")
    return {"task": task, "mode": mode, "seed": seed, "head": head, "wrist": wrist, "status": status,
            "load": (_guard(on_reset), [sid, task, mode, seed], views)}


def build_app(ctrl: LabController) -> gr.Blocks:
    with gr.Blocks(title="Act2Goal Lab") as demo:
        gr.Markdown("# Act2Goal Lab\nGoal-conditioned world model + action expert, on the embedded MuJoCo tabletop.")
        sid = gr.State(None)
        with gr.Tab("Simulator"):
            sim = create_sim_tab(ctrl, sid)
        # a new page gets its own simulator, already showing the default scene
        demo.load(ctrl.new_session, None, sid, api_name="new_session").then(*sim["load"])
    return demo
