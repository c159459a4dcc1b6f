"""Gradio UI: an app factory and one builder per tab (event wiring at the bottom of each builder).
Callbacks are controller methods; ``gr.State`` holds the session id and small ids only."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import gradio as gr

from a2g_core.eval import plots
from a2g_core.eval.reported import PAPER_SUCCESS
from a2g_core.sim import MODES, TASKS
from app import figures
from app.controller import LabController, LabError, upscale
from app.media import side_by_side

LABELS = ["all", "success", "failure", "none"]


def _guard(fn):
    """Operator errors become a readable message in the page instead of a stack trace."""
    import functools
    import inspect

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapped_gen(*args):
            try:
                yield from fn(*args)
            except (LabError, ValueError) as e:
                raise gr.Error(str(e)) from None
        return wrapped_gen

    @functools.wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except (LabError, ValueError) as e:
            raise gr.Error(str(e)) from None
    return wrapped


def _goal_gallery(images: dict) -> list:
    return [(upscale(img), f"goal · {v}") for v, img in images.items()]


# ---------------------------------------------------------------------- Goals
def create_goals_tab(ctrl: LabController, sid: gr.State) -> dict:
    gr.Markdown("A goal is one image per camera view. Pick the scripted expert's final frame for a scene, snap the "
                "simulator's current views, or upload your own (PNG/JPEG/WebP/BMP, ≤ 10 MB; centre-cropped and "
                f"resized to {ctrl.resolution} px). The chosen goal drives Imagine and Execute.")
    with gr.Row():
        with gr.Column():
            gr.Markdown("**Expert goal** (the paper's goals: the expert's final frame on this scene)")
            with gr.Row():
                task = gr.Dropdown(list(TASKS), value=ctrl.default_task, label="Task")
                mode = gr.Radio(list(MODES), value="easy", label="Mode")
                seed = gr.Number(value=10_000, precision=0, label="Seed", minimum=0, elem_id="goal-seed")
            expert = gr.Button("Use expert goal", variant="primary")
            snap = gr.Button("Snap current sim views as goal")
        with gr.Column():
            gr.Markdown("**Upload** (one image is used for the head view)")
            with gr.Row():
                up_head = gr.File(label="head view", file_types=["image"], type="filepath", height=120)
                up_wrist = gr.File(label="wrist view (optional)", file_types=["image"], type="filepath", height=120)
            up_name = gr.Textbox(label="name", placeholder="e.g. cup on the left coaster")
            upload = gr.Button("Store uploaded goal")
    with gr.Row():
        library = gr.Dropdown(choices=[], label="Goal library (newest first)", interactive=True, scale=3)
        refresh = gr.Button("Refresh library", scale=1)
    current = gr.Markdown("No goal chosen yet.")
    preview = gr.Gallery(label="current goal (as the model sees it)", columns=2, height=260, object_fit="contain")

    def shown(g):
        choices = [(x["label"], x["id"]) for x in ctrl.goal_library()]
        return gr.update(choices=choices, value=g["id"]), f"**Current goal:** {g['label']}", _goal_gallery(g["images"])

    def on_expert(s, t, m, sd):
        return shown(ctrl.goal_expert(s, t, m, sd))

    def on_snap(s):
        return shown(ctrl.goal_snap(s))

    def on_upload(s, h, w, name):
        return shown(ctrl.goal_upload(s, h, w, name))

    def on_pick(s, gid):
        if gid is None:
            return gr.update(), "No goal chosen yet.", []
        return shown(ctrl.goal_pick(s, gid))

    def on_refresh():
        return gr.update(choices=[(x["label"], x["id"]) for x in ctrl.goal_library()])

    outs = [library, current, preview]
    expert.click(_guard(on_expert), [sid, task, mode, seed], outs, api_name="goal_expert")
    snap.click(_guard(on_snap), [sid], outs, api_name="goal_snap")
    upload.click(_guard(on_upload), [sid, up_head, up_wrist, up_name], outs, api_name="goal_upload")
    library.input(_guard(on_pick), [sid, library], outs, api_name="goal_pick")
    refresh.click(on_refresh, None, [library], api_name="goal_library")
    return {"task": task, "mode": mode, "seed": seed, "library": library, "current": current, "preview": preview,
            "refresh": on_refresh}


# ---------------------------------------------------------------------- Imagine
def create_imagine_tab(ctrl: LabController, sid: gr.State) -> dict:
    gr.Markdown("What the goal-conditioned world model imagines between the current observation and the goal: "
                "proximal frames (dense, near) and distal frames (log-spaced, up to the goal), labelled with their "
                "step offsets from now.")
    go_btn = gr.Button("Imagine", variant="primary")
    status = gr.Markdown("")
    galleries = {v: gr.Gallery(label=f"{v} view: imagined frames", columns=6, height=230, object_fit="contain")
                 for v in ctrl.policy.config.views}
    timeline = gr.Plot(label="MSTH timeline")

    def on_imagine(s, progress=gr.Progress()):
        progress(0.1, desc="world model: integrating the imagined frames")
        out = ctrl.imagine(s)
        progress(1.0)
        items = {}
        for v, frames in out["frames"].items():
            items[v] = [(upscale(f), f"{'proximal' if i < out['num_proximal'] else 'distal'} +{o} steps")
                        for i, (f, o) in enumerate(zip(frames, out["offsets"]))]
        fig = figures.msth_timeline(out["offsets"], out["num_proximal"], out["action_offsets"], out["P"], out["E"])
        msg = (f"{out['num_proximal']} proximal + {len(out['offsets']) - out['num_proximal']} distal frames; "
               f"{out['P']} proximal actions ({out['E']} executed) + {out['M']} distal; K = {out['K']} steps.")
        return (*[items[v] for v in galleries], fig, msg)

    go_btn.click(_guard(on_imagine), [sid], [*galleries.values(), timeline, status], api_name="imagine")
    return {"button": go_btn, "galleries": galleries}


# ---------------------------------------------------------------------- Execute
def create_execute_tab(ctrl: LabController, sid: gr.State) -> dict:
    with gr.Row():
        task = gr.Dropdown(list(TASKS), value=ctrl.default_task, label="Task")
        mode = gr.Radio(list(MODES), value="easy", label="Mode")
        seed = gr.Number(value=10_000, precision=0, label="Seed", minimum=0, elem_id="exec-seed")
        reset = gr.Button("Reset scene")
    with gr.Row():
        step = gr.Button("Step (one chunk)", variant="primary")
        run = gr.Button("Run until success / stop", variant="primary")
        stop = gr.Button("Stop", variant="stop")
        imagine = gr.Checkbox(value=True, label="record imagined frames (for Review)")
        per_chunk = gr.Number(value=ctrl.policy.config.msth_E, precision=0, minimum=1, elem_id="exec-per-chunk",
                              label=f"actions per chunk (1..{ctrl.policy.config.msth_P}; fewer replan more often)")
    status = gr.Markdown("Press **Reset scene**, choose a goal, then **Step** or **Run**.")
    with gr.Row():
        head = gr.Image(label="head camera", interactive=False, height=280, format="png")
        wrist = gr.Image(label="wrist camera", interactive=False, height=280, format="png")
        goal = gr.Gallery(label="goal", columns=2, height=280, object_fit="contain")
    state = gr.JSON(label="proprio state [x, y, z, yaw, grip]")
    with gr.Accordion("Teleop and demonstrations", open=False):
        with gr.Row():
            jogs = {c: gr.Button(c, size="sm") for c in
                    ("x+", "x-", "y+", "y-", "z+", "z-", "yaw+", "yaw-", "open", "close", "home")}
        with gr.Row():
            demo_start = gr.Button("Start demo")
            demo_save = gr.Button("Save demo (and snap its end as a goal)")
            expert_run = gr.Button("Scripted expert: run to the end")
        demo_msg = gr.Markdown("")
    with gr.Accordion("Genie-01 / openpi bridge", open=False):
        gr.Markdown("Serve the lab's policy over the openpi WebSocket protocol; connect a robot with "
                    "`python -m a2g_core robot-run --server ws://127.0.0.1:PORT` (the simulator) or a Genie-01. "
                    "The server starts paused; arm, step, pause or stop it here. Its rollouts appear in Review.")
        with gr.Row():
            port = gr.Number(value=8000, precision=0, label="port")
            b_start = gr.Button("Start bridge server")
            b_goal = gr.Button("Send current goal")
            b_buttons = {a: gr.Button(a) for a in ("arm", "step", "pause", "stop")}
            b_refresh = gr.Button("Refresh view")
        b_status = gr.JSON(label="bridge status")
        b_view = gr.Gallery(label="latest observation from the robot", columns=3, height=220)

    views = [head, wrist, state, status]

    def show(v):
        extra = f" · **rollout #{v['ended']} recorded** (see Review)" if v.get("ended") else ""
        return v["head"], v["wrist"], v["state"], v["status"] + extra

    def on_reset(s, t, m, sd):
        return show(ctrl.sim_reset(s, t, m, sd))

    def on_step(s, im, n):
        return show(ctrl.exec_step(s, im, n))

    def on_run(s, im, n):
        for v in ctrl.exec_run(s, im, execute=n):
            yield show(v)

    def on_stop(s):
        return ctrl.exec_stop(s)

    def on_goal(s):
        sess = ctrl._session(s)
        if sess.goal_id is None:
            return []
        return _goal_gallery(ctrl.goal_pick(s, sess.goal_id)["images"])

    reset.click(_guard(on_reset), [sid, task, mode, seed], views, api_name="sim_reset").then(
        _guard(on_goal), [sid], [goal])
    # the goal may have been chosen on the Goals tab since: show the one being executed
    step.click(_guard(on_step), [sid, imagine, per_chunk], views, api_name="exec_step").then(_guard(on_goal), [sid],
                                                                                         [goal])
    run.click(_guard(on_run), [sid, imagine, per_chunk], views, api_name="exec_run").then(_guard(on_goal), [sid],
                                                                                       [goal])
    stop.click(_guard(on_stop), [sid], [status], api_name="exec_stop")
    for name, btn in jogs.items():
        btn.click(_guard(lambda s, c=name: show(ctrl.teleop(s, c))), [sid], views,
                  api_name=f"teleop_{name.replace('+', '_plus').replace('-', '_minus')}")
    demo_start.click(_guard(ctrl.demo_start), [sid], [demo_msg], api_name="demo_start")
    demo_save.click(_guard(ctrl.demo_save), [sid], [demo_msg], api_name="demo_save")
    expert_run.click(_guard(lambda s: show(ctrl.sim_step_expert(s, 10_000))), [sid], views, api_name="sim_run_expert")

    def b_view_fn():
        v = ctrl.bridge_view()
        return ([(f, k) for k, f in v["frames"].items()], v["status"]) if v else ([], ctrl.bridge.status()
                                                                                  if ctrl.bridge else {})
    b_start.click(_guard(lambda s, p: ctrl.bridge_start(p, s)), [sid, port], [b_status], api_name="bridge_start")
    b_goal.click(_guard(ctrl.bridge_goal), [sid], [b_status], api_name="bridge_goal")
    for a, btn in b_buttons.items():
        btn.click(_guard(lambda a=a: ctrl.bridge_control(a)), None, [b_status], api_name=f"bridge_{a}")
    b_refresh.click(_guard(b_view_fn), None, [b_view, b_status], api_name="bridge_view")
    return {"task": task, "mode": mode, "seed": seed, "head": head, "goal": goal, "status": status,
            "load": (_guard(on_reset), [sid, task, mode, seed], views)}


# ---------------------------------------------------------------------- Review
def create_review_tab(ctrl: LabController, sid: gr.State) -> dict:
    with gr.Row():
        f_task = gr.Dropdown(["all", *TASKS, "robot"], value="all", label="task")
        f_label = gr.Dropdown(LABELS, value="all", label="label")
        f_round = gr.Textbox(value="all", label="round id (or all)")
        refresh = gr.Button("Refresh list")
    rollout = gr.Dropdown(choices=[], label="Rollout", interactive=True)
    summary = gr.Markdown("")
    videos = {v: gr.Video(label=f"{v}: real (left) | imagined (right)", height=260, autoplay=False)
              for v in ctrl.policy.config.views}
    plot = gr.Plot(label="state and actions")
    with gr.Row():
        label = gr.Radio(["success", "failure"], label="operator label")
        note = gr.Textbox(label="note", scale=3)
        save = gr.Button("Save label", variant="primary")
    saved = gr.Markdown("")

    def on_refresh(t, lab, rnd):
        rows = ctrl.rollouts(None if t == "all" else t, lab, None if rnd in ("", "all") else rnd)
        choices = [(f"#{r.id} · {r.target} · {r.task} {r.mode or ''} seed {r.seed} · {r.steps} steps · sim "
                    f"{'✓' if r.sim_success else ('✗' if r.sim_success is False else '–')} · label {r.label or '–'}",
                    r.id) for r in rows]
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def on_load(rid):
        if rid is None:                          # an empty list: nothing to show, not an error
            return (*[None] * len(videos), None, "No rollouts match.", None, "")
        d = ctrl.review(rid)
        r = d["row"]
        out_dir = ctrl.root / "videos" / f"rollout-{r.id:06d}"
        vids = [str(side_by_side(d["frames"], d["imagined"], v, out_dir / f"{v}.mp4")) if v in d["frames"] else None
                for v in videos]
        fig = figures.rollout_plot(d["states"], d["actions"], d["chunks"], d["predictions"])
        text = (f"**#{r.id}** · {r.target} · {r.task} {r.mode or ''} seed {r.seed} · {r.steps} steps in "
                f"{len(d['chunks'])} chunks · policy {Path(r.policy).name}{' + ' + r.adapter if r.adapter else ''} · "
                f"sim success: {r.sim_success} · label: {r.label or '–'} {('· ' + r.note) if r.note else ''}")
        return (*vids, fig, text, r.label, r.note)

    def on_save(rid, lab, nt):
        if rid is None:
            raise LabError("Pick a rollout from the list first.")
        if lab is None:
            raise LabError("Choose success or failure.")
        return ctrl.label(rid, lab, nt)

    refresh.click(_guard(on_refresh), [f_task, f_label, f_round], [rollout], api_name="review_list")
    rollout.change(_guard(on_load), [rollout], [*videos.values(), plot, summary, label, note], api_name="review_load")
    save.click(_guard(on_save), [rollout, label, note], [saved], api_name="review_label")
    return {"refresh": refresh, "rollout": rollout, "list": (_guard(on_refresh), [f_task, f_label, f_round], [rollout])}


# ---------------------------------------------------------------------- Improve
def create_improve_tab(ctrl: LabController, sid: gr.State) -> dict:
    gr.Markdown("One round: roll the policy out in the simulator until the replay buffer holds *buffer* executed "
                "chunks, relabel each chunk's goal as the observation it reached (hindsight), train only LoRA "
                "parameters, evaluate. Runs `python -m a2g_core improve` in the background; every round is a row "
                "in the lab database. With a *scenario* every rollout and evaluation plays that one seed's scene "
                "(the paper's §5.4: one scenario per hard-mode task) and episodes differ only in the policy's noise. "
                "The defaults are the paper's; the setting measured to lift a policy (README, self-improvement) is "
                "rollouts used *success*, relabelled goal *any later reached*, a success's kept goals *0.5*, buffer 200.")
    with gr.Row():
        task = gr.Dropdown(list(TASKS), value=ctrl.default_task, label="task")
        mode = gr.Radio(list(MODES), value="hard", label="mode")
        scenario = gr.Textbox(value="", placeholder="e.g. 10003", label="scenario: one scene's seed (empty: a new "
                              "scene per rollout, evaluation on the unseen seeds)")
        source = gr.Radio(["all", "success", "failure"], value="all", label="rollouts used")
        relabel = gr.Radio([("reached by the chunk (paper)", "chunk"), ("any later reached (HER future)", "future")],
                           value="chunk", label="relabelled goal")
        keep_goal = gr.Number(value=0, label="share of a success's samples that keep its goal (0: the paper's)",
                              minimum=0, maximum=1)
    with gr.Row():
        rounds = gr.Number(value=1, precision=0, label="rounds", minimum=1)
        buffer = gr.Number(value=20, precision=0, label="buffer (transitions)", minimum=1)
        epochs = gr.Number(value=10, precision=0, label="epochs", minimum=1)
        rank = gr.Number(value=64, precision=0, label="LoRA rank", minimum=1)
        evals = gr.Number(value=10, precision=0, label="evaluation episodes", minimum=0)
        max_rollouts = gr.Number(value=10, precision=0, label="max rollouts per round", minimum=1)
        lr = gr.Number(value=3e-4, label="learning rate", minimum=0)
    with gr.Row():
        anchor = gr.Textbox(value="", label="expert anchor: dataset folder whose windows share each batch "
                                            "(optional; not the paper's recipe)", placeholder="e.g. sessions/data/expert64")
        anchor_fraction = gr.Number(value=0.5, label="anchor's share of each batch", minimum=0, maximum=1)
    start = gr.Button("Start improvement round", variant="primary")
    state = gr.Markdown("")
    log = gr.Textbox(label="live log", lines=10, max_lines=10, autoscroll=True)
    table = gr.Dataframe(headers=["id", "run", "round", "status", "success", "transitions", "rollout s",
                                  "relabel s", "optimise s", "evaluate s", "adapter"], interactive=False)
    plot = gr.Plot(label="success per round")
    with gr.Row():
        policy = gr.Dropdown(choices=ctrl.policies(), value=str(ctrl.policy_dir), label="policy the lab uses "
                             "(base checkpoint)", interactive=True, allow_custom_value=True)
        adapter = gr.Dropdown(choices=[("none (base)", "")], value="", label="adapter on that base", interactive=True)
        use = gr.Button("Use this policy")
    used = gr.Markdown(f"The lab's policy: {ctrl.describe_policy()}.")
    timer = gr.Timer(2.0, active=False)

    def poll():
        st = ctrl.improve_status()
        rows = [[r.id, Path(r.config.get("run", "")).name, r.number, r.status,
                 r.metrics.get("success"), r.metrics.get("transitions"),
                 *[round(r.timings[k], 1) if k in r.timings else None
                   for k in ("rollout", "relabel", "optimise", "evaluate")], r.adapter or r.error or ""]
                for r in st["rounds"]]
        base = ctrl.improve_baselines(st["rounds"])
        if st["running"]:
            msg = "**running…**"
        elif st["returncode"] is None:
            msg = "No round started from this page yet."
        else:
            msg = "**finished**" if st["returncode"] == 0 else f"**failed** (exit code {st['returncode']}); see the log"
        choices = [("none (base)", "")] + ctrl.adapters()
        return (msg, st["log"], rows, plots.rounds_plot(st["rounds"], base), gr.update(choices=choices),
                gr.Timer(active=st["running"]))

    def on_start(t, m, src, n, b, e, rk, ev, mr, rl, lr_, an, af, sc, kg):
        msg = ctrl.improve_start(task=t, mode=m, source=src, rounds=n, buffer=b, epochs=e, rank=rk, eval_episodes=ev,
                                 max_rollouts=mr, relabel=rl, lr=lr_, anchor=an, anchor_fraction=af, scenario=sc,
                                 keep_goal=kg)
        return msg, gr.Timer(active=True)

    outs = [state, log, table, plot, adapter, timer]
    start.click(_guard(on_start), [task, mode, source, rounds, buffer, epochs, rank, evals, max_rollouts, relabel, lr,
                                   anchor, anchor_fraction, scenario, keep_goal],
                [state, timer], api_name="improve_start")
    timer.tick(poll, None, outs, api_name="improve_status")
    policy.change(lambda p: gr.update(choices=[("none (base)", "")] + ctrl.adapters(p), value=""), [policy], [adapter],
                  api_name="policy_adapters")
    use.click(_guard(ctrl.use_policy), [policy, adapter], [used], api_name="use_policy")
    return {"start": start, "poll": (poll, None, outs)}


# ---------------------------------------------------------------------- Benchmarks
def create_benchmarks_tab(ctrl: LabController) -> dict:
    refresh = gr.Button("Refresh")
    table = gr.Dataframe(headers=["suite", "method", "task", "mode", "episodes", "success", "95% low", "95% high",
                                  "adapter"], interactive=False)
    plot = gr.Plot(label="success")
    speed = gr.JSON(label="speed (assets/bench_*.json)")

    def on_refresh():
        rows = ctrl.evaluations()
        table_rows = [[e.suite, e.method, e.task, e.mode if e.scenario is None else f"{e.mode}, scene {e.scenario}",
                       e.episodes, round(e.success, 3), round(e.ci_low, 3), round(e.ci_high, 3),
                       Path(e.adapter).name if e.adapter else ""] for e in rows]
        bench = {}
        for name in ("bench_model", "bench_bridge", "bench_sim"):
            p = Path("assets") / f"{name}.json"
            if p.exists():
                bench[name] = {k: v for k, v in json.loads(p.read_text()).items() if not isinstance(v, list)}
        across_scenes = [e for e in rows if not e.suite.startswith("improve") and e.scenario is None]
        # the paper's figures (Table 1) are over seeds, as ours across scenes; a one-scene result has no match
        plot = plots.evaluation_plot(across_scenes, reported=PAPER_SUCCESS) if across_scenes else plots.evaluation_plot(rows)
        return table_rows, plot, bench

    refresh.click(on_refresh, None, [table, plot, speed], api_name="benchmarks")
    return {"load": (on_refresh, None, [table, plot, speed])}


def page_answers(url: str, wait_s: float) -> bool:
    """Whether ``url`` answers a HEAD request (with any status under 500: 401 where a password is set) within
    ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
            return True
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return True
        except OSError:                         # not listening yet, or too slow
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def serve(demo: gr.Blocks, host: str, port: int, *, wait_s: float = 60.0, **launch_kwargs) -> str:
    """Start the lab's server without blocking and return its URL once the page answers. Gradio's own start check
    gives the page 3 s and then fails with "localhost is not accessible"; a machine busy with a training run beside
    the lab can take longer (a browser test failed so with two other jobs on 2 cores), so the check here waits
    ``wait_s`` (``_frontend=False`` only turns Gradio's check off)."""
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, _frontend=False, **launch_kwargs)
    if not page_answers(demo.local_url, wait_s):
        demo.close()
        raise RuntimeError(f"The lab started but its page at {demo.local_url} did not answer within {wait_s:.0f} s.")
    return demo.local_url


def build_app(ctrl: LabController) -> gr.Blocks:
    with gr.Blocks(title="Act2Goal Lab") as demo:
        gr.Markdown("# Act2Goal Lab\nShow the robot a goal image, see what the world model imagines, execute the "
                    "policy's chunks, review and label, and improve by hindsight relabelling + LoRA.")
        sid = gr.State(None, delete_callback=ctrl.close_session)     # a closed tab frees its simulator
        with gr.Tab("Goals"):
            goals = create_goals_tab(ctrl, sid)
        with gr.Tab("Imagine"):
            create_imagine_tab(ctrl, sid)
        with gr.Tab("Execute"):
            execute = create_execute_tab(ctrl, sid)
        with gr.Tab("Review"):
            review = create_review_tab(ctrl, sid)
        with gr.Tab("Improve"):
            improve = create_improve_tab(ctrl, sid)
        with gr.Tab("Benchmarks"):
            bench = create_benchmarks_tab(ctrl)
        # a new page gets its own simulator, already showing the default scene, and the lists filled in
        load = demo.load(ctrl.new_session, None, sid, api_name="new_session").then(*execute["load"])
        load.then(goals["refresh"], None, [goals["library"]]).then(*review["list"]).then(
            *improve["poll"]).then(*bench["load"])
    return demo
