# Act2Goal Lab — set-up, run, test. `make help` lists the targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv run test bench checkpoint checkpoint-task lerobot-check clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt requirements-nodeps.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install requirements.txt into it

POLICY ?=
run: $(STAMP)  ## start the lab on http://127.0.0.1:7860 (POLICY=folder for another checkpoint)
	$(BIN)/python app.py $(if $(POLICY),--policy $(POLICY))

test: $(STAMP)  ## run the test suite (installs Debian's chromium for the browser test when it can)
	sh scripts/ensure_chromium.sh
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)  ## simulator and model benchmarks (writes assets/bench_*.json)
	$(BIN)/python -m a2g_core bench-sim --json assets/bench_sim.json
	$(BIN)/python -m a2g_core bench-model --json assets/bench_model.json

# The default checkpoint and its baselines: expert data -> VAE (4x, object-weighted) -> stage 1 of
# act2goal, dp_gc and no_msth (two at a time, one thread each) -> assets/checkpoints/{tiny,dp_gc,no_msth}.
# Every step resumes after a kill; on 2 CPU cores the whole chain takes about 3 hours.
# Stage 2 (`train --stage 2 --init RUNS/stage1/final`) is not part of it: see the README.
DATA ?= sessions/data/expert64
RUNS ?= sessions/runs
PER_TASK ?= 60
VAE_STEPS ?= 3000
S1_STEPS ?= 2000
S1 = OMP_NUM_THREADS=1 $(BIN)/python -m a2g_core train --stage 1 --data $(DATA) --per-task $(PER_TASK) \
	--vae $(RUNS)/vae/vae --steps $(S1_STEPS) --ckpt-every 250
checkpoint: $(STAMP)  ## train the shipped checkpoint and both baselines from scratch (about 3 hours on 2 cores)
	$(BIN)/python -m a2g_core gen-data --task all --mode all --episodes 100 --workers 2 --resolution 64 --out $(DATA)
	$(BIN)/python -m a2g_core train --stage vae --data $(DATA) --out $(RUNS)/vae --vae-blocks 16,32,64 \
		--vae-object-weight 10 --steps $(VAE_STEPS) --lr 1e-3 --warmup 100 --ckpt-every 200
	$(BIN)/python -m a2g_core cache-latents --data $(DATA) --per-task $(PER_TASK) --vae $(RUNS)/vae/vae
	$(S1) --out $(RUNS)/stage1 & $(S1) --policy dp_gc --out $(RUNS)/dp_gc; wait
	$(S1) --policy no_msth --out $(RUNS)/no_msth
	for m in tiny:stage1 dp_gc:dp_gc no_msth:no_msth; do dst=assets/checkpoints/$${m%%:*}; run=$(RUNS)/$${m##*:}; \
		rm -rf $$dst && mkdir -p $$dst && cp -r $$run/final/. $$dst/ && cp $$run/log.jsonl $$dst/train_log_stage1.jsonl; done
	cp $(RUNS)/vae/log.jsonl assets/checkpoints/tiny/train_log_vae.jsonl
	$(BIN)/python -m a2g_core plot-log --log VAE=$(RUNS)/vae/log.jsonl --log "stage 1=$(RUNS)/stage1/log.jsonl" \
		--log "DP-GC=$(RUNS)/dp_gc/log.jsonl" --log "w/o MSTH=$(RUNS)/no_msth/log.jsonl" \
		--out assets/checkpoints/tiny/training.png

# A single-task Act2Goal, the recipe that succeeds (docs/model-runs.md, item 9): 100 clean and 500 DART
# expert episodes of TASK in easy mode (TASK_MODE=all adds hard), the shipped VAE, stage 1 (L_v + 0.1 L_a,
# fixed horizon) for 4000 steps, then the paper's stage 2 (L_a end to end) for 4000 -> assets/checkpoints/TASK
# (about 45 minutes on 2 cores), evaluated on 50 unseen seeds per mode (eval.json, listed by the lab's
# Benchmarks tab). RES=96 renders 96 px frames for the same VAE (it is convolutional) and
# names the runs and the checkpoint TASK_96px. STATE_NOISE=0.5 trains stage 1 with noise of that std on the
# normalised state input, so the expert reads the images rather than its own pose; STATE_NOISE_DIMS=0,1,2,3 puts
# it on the pose only, sparing the gripper's opening (docs/model-runs.md, fifteenth session). EXECUTE=4 saves the
# checkpoint with 4 actions executed per chunk instead of the preset's 8 (training never reads it; eval and the lab do).
# STEPS=6000 trains each stage that long (more scenes, with TASK_MODE=all, need more steps).
# KEYPOINT_CONTRAST=1 reads the current and goal frames side by side for the keypoints (train --keypoint-contrast);
# EARLY_WINDOWS=0.5 draws that fraction of training windows from an episode's first P steps, where only the images
# say where to go (every stage keeps it: stage 2 reads it from the stage-1 policy; twenty-ninth session).
# MORE=6000 continues stage 2 that many steps from its end, a second cosine cycle (`train --stage 2 --init
# RUNS/TASK_s2/final`). The shipped place_empty_cup (easy + hard) is TASK_MODE=all STEPS=6000 STATE_NOISE=0.5
# EXECUTE=4 KEYPOINT_CONTRAST=1 MORE=6000 (docs/model-runs.md, twentieth session; about 3 hours on 2 cores).
# INIT=folder skips stage 1: stage 2 starts from that policy (another task's will do: `train --init --renormalize`
# refits its state and action statistics), which keeps its own stage-1 settings; INIT=assets/checkpoints/place_empty_cup
# brings eyes already trained on hard scenes (docs/model-runs.md, thirty-first session).
TASK ?= place_empty_cup
STATE_NOISE ?= 0
STATE_NOISE_DIMS ?=
EXECUTE ?=
TASK_MODE ?= easy
RES ?= 64
NAME = $(TASK)$(if $(filter-out 64,$(RES)),_$(RES)px)
TASK_DATA = sessions/data/$(TASK)_dart$(RES)
STEPS ?= 4000
KEYPOINT_CONTRAST ?=
EARLY_WINDOWS ?=
MORE ?=
INIT ?=
# what every stage the recipe trains sets (stage 2 from INIT has no stage 1 of this recipe to read them from)
RUN_FLAGS = $(if $(EXECUTE),--execute $(EXECUTE)) $(if $(EARLY_WINDOWS),--early-windows $(EARLY_WINDOWS))
LAST = $(RUNS)/$(NAME)_s2$(if $(MORE),more)
TASK_FLAGS = --data $(TASK_DATA) --task $(TASK) --mode $(TASK_MODE)
ONE = $(TASK_FLAGS) --steps $(STEPS)
checkpoint-task: $(STAMP)  ## train one task's checkpoint (easy): make checkpoint-task TASK=move_can_pot (about 45 min)
	$(BIN)/python -m a2g_core gen-data --task $(TASK) --mode $(TASK_MODE) --episodes 100 --workers 2 --resolution $(RES) \
		--out $(TASK_DATA)
	$(BIN)/python -m a2g_core gen-data --task $(TASK) --mode $(TASK_MODE) --episodes 500 --seed-start 1000 \
		--noise 0.015 --workers 2 --resolution $(RES) --out $(TASK_DATA)
	$(if $(INIT),,$(BIN)/python -m a2g_core train --stage 1 --policy act2goal --vae assets/checkpoints/tiny/vae $(ONE) \
		--state-noise $(STATE_NOISE) $(if $(STATE_NOISE_DIMS),--state-noise-dims $(STATE_NOISE_DIMS)) \
		$(if $(KEYPOINT_CONTRAST),--keypoint-contrast) $(RUN_FLAGS) --out $(RUNS)/$(NAME)_s1)
	$(BIN)/python -m a2g_core train --stage 2 --init $(or $(INIT),$(RUNS)/$(NAME)_s1/final) $(ONE) \
		$(if $(INIT),--renormalize $(RUN_FLAGS)) --out $(RUNS)/$(NAME)_s2
	$(if $(MORE),$(BIN)/python -m a2g_core train --stage 2 --init $(RUNS)/$(NAME)_s2/final $(TASK_FLAGS) --steps $(MORE) \
		--out $(LAST))
	rm -rf assets/checkpoints/$(NAME) && mkdir -p assets/checkpoints/$(NAME) && \
		cp -r $(LAST)/final/. assets/checkpoints/$(NAME)/
	$(if $(INIT),,cp $(RUNS)/$(NAME)_s1/log.jsonl assets/checkpoints/$(NAME)/train_log_stage1.jsonl)
	cp $(RUNS)/$(NAME)_s2/log.jsonl assets/checkpoints/$(NAME)/train_log_stage2.jsonl
	$(if $(MORE),cp $(LAST)/log.jsonl assets/checkpoints/$(NAME)/train_log_stage2_more.jsonl)
	$(BIN)/python -m a2g_core plot-log $(if $(INIT),,--log "stage 1=$(RUNS)/$(NAME)_s1/log.jsonl") \
		--log "stage 2=$(RUNS)/$(NAME)_s2/log.jsonl" $(if $(MORE),--log "stage 2 continued=$(LAST)/log.jsonl") \
		--out assets/checkpoints/$(NAME)/training.png
	$(BIN)/python -m a2g_core eval --policy assets/checkpoints/$(NAME) --task $(TASK) --mode $(TASK_MODE) --episodes 50 \
		--workers 2 --db '' --json assets/checkpoints/$(NAME)/eval.json

LR := sessions/lerobot-check
lerobot-check: $(STAMP)  ## export a small dataset and open it with LeRobot's own reader (separate .venv-lerobot)
	test -x .venv-lerobot/bin/python || bash scripts/lerobot_reader/setup_venv.sh .venv-lerobot
	rm -rf $(LR) && $(BIN)/python -m a2g_core gen-data --task place_empty_cup,writing --mode easy --episodes 2 \
		--resolution 64 --out $(LR)/data
	$(BIN)/python -m a2g_core export-lerobot --dataset $(LR)/data --out $(LR)/lerobot
	.venv-lerobot/bin/python scripts/lerobot_reader/check_lerobot.py $(LR)/lerobot
	$(BIN)/python -m a2g_core import-lerobot --src $(LR)/lerobot --out $(LR)/back

clean:  ## remove caches (keeps .venv and sessions/)
	rm -rf .cache .pytest_cache
