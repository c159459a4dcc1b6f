# Act2Goal Lab — set-up, run, test. `make help` lists the targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv run test bench checkpoint lerobot-check clean

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

run: $(STAMP)  ## start the lab on http://127.0.0.1:7860
	$(BIN)/python app.py

test: $(STAMP)  ## run the test suite (installs Debian's chromium for the browser test when it can)
	sh scripts/ensure_chromium.sh
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)  ## simulator and model benchmarks (writes assets/bench_*.json)
	$(BIN)/python -m a2g_core bench-sim --json assets/bench_sim.json
	$(BIN)/python -m a2g_core bench-model --json assets/bench_model.json

# The default checkpoint: expert data -> VAE -> stage 1 -> stage 2 -> assets/checkpoints/tiny.
# Every step resumes after a kill; on 2 CPU cores the whole chain takes about 2.5 hours.
DATA ?= sessions/data/expert64
RUNS ?= sessions/runs
PER_TASK ?= 60
VAE_STEPS ?= 600
S1_STEPS ?= 2500
S2_STEPS ?= 2000
checkpoint: $(STAMP)  ## train the shipped tiny checkpoint from scratch (about 2.5 hours on 2 cores)
	$(BIN)/python -m a2g_core gen-data --task all --mode all --episodes 100 --workers 2 --resolution 64 --out $(DATA)
	$(BIN)/python -m a2g_core train --stage vae --data $(DATA) --out $(RUNS)/vae --steps $(VAE_STEPS) --lr 1e-3 --warmup 50 --ckpt-every 100
	$(BIN)/python -m a2g_core train --stage 1 --data $(DATA) --per-task $(PER_TASK) --vae $(RUNS)/vae/vae --out $(RUNS)/stage1 --steps $(S1_STEPS) --ckpt-every 250
	$(BIN)/python -m a2g_core train --stage 2 --data $(DATA) --per-task $(PER_TASK) --init $(RUNS)/stage1/final --out $(RUNS)/stage2 --steps $(S2_STEPS) --lr 2e-4 --ckpt-every 250
	rm -rf assets/checkpoints/tiny && mkdir -p assets/checkpoints/tiny
	cp -r $(RUNS)/stage2/final/. assets/checkpoints/tiny/
	cat $(RUNS)/vae/log.jsonl > assets/checkpoints/tiny/train_log_vae.jsonl
	cat $(RUNS)/stage1/log.jsonl > assets/checkpoints/tiny/train_log_stage1.jsonl
	cat $(RUNS)/stage2/log.jsonl > assets/checkpoints/tiny/train_log_stage2.jsonl
	$(BIN)/python -m a2g_core plot-log --log VAE=$(RUNS)/vae/log.jsonl --log "stage 1=$(RUNS)/stage1/log.jsonl" \
		--log "stage 2=$(RUNS)/stage2/log.jsonl" --out assets/checkpoints/tiny/training.png

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
