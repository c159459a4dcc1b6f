import pytest

from a2g_core.sim import MODES, TASKS, make_env
from a2g_core.sim.rollout import run_expert


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task", list(TASKS))
def test_expert_succeeds(task, mode):
    env = make_env(task, mode, 64)
    for seed in (11, 12):
        ep = run_expert(env, seed)
        assert ep.success, f"expert failed on {task}/{mode} seed {seed}"
        assert len(ep) < env.max_steps
        # the goal is the final frame, and the episode ends at rest on it
        assert (ep.goal["head"] == ep.frames["head"][-1]).all()
    env.close()
