# Two entry points for a fresh machine with Python 3.11+:
#   make run   - create .venv, install, start the server on embedded defaults
#   make test  - create .venv, install with test extras, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test fixtures models bench fuzz soak clean-venv

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: $(BIN)/.installed
	$(BIN)/stream-server serve

# pytest exits 5 when it collects nothing; that is not a failure of the code under test.
test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# Rebuild committed artefacts (needs espeak-ng, sox and the train extras).
fixtures: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[train]'
	$(BIN)/python scripts/make_fixtures.py

# Regenerate the corpus, train and export both classifiers, write models/EVALUATION.md
# (needs espeak-ng; about 25 min on 2 cores, most of it TTS + Whisper for the ASR evaluation).
models: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[train]'
	$(BIN)/python models/train_text_abuse.py
	$(BIN)/python models/train_voice_shouting.py
	$(BIN)/python models/evaluate.py --asr

# Every figure in benchmarks/RESULTS.md (about an hour on 2 cores; nothing else should run).
bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/asr_window.py
	$(BIN)/python benchmarks/alert_latency.py --repeat 3
	$(BIN)/python benchmarks/capacity.py --calls 1 8 10 12 --baseline-calls 1 2 3 4 --keep-going --profile 60

# Hostile input: every atheris target in fuzz/ for FUZZ_RUNS inputs or FUZZ_SECONDS (whichever
# first), one after another, then the hypothesis suites with FUZZ_EXAMPLES examples per test; writes
# the "fuzz" section of benchmarks/RESULTS.md and fails on any finding (about 3 min on 2 cores).
FUZZ_RUNS ?= 100000
FUZZ_SECONDS ?= 60
FUZZ_EXAMPLES ?= 2000
fuzz: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	$(BIN)/python fuzz/run_all.py --runs $(FUZZ_RUNS) --seconds $(FUZZ_SECONDS) --examples $(FUZZ_EXAMPLES) $(FUZZ_ARGS)

# Soak (issue 8): 30 min of 6 concurrent loopback calls (Twilio/Telnyx/jambonz) with random drops
# and malformed frames, then every call's status, recording, segments, alerts and bad-message
# count, and the server's idle memory, file descriptors and sockets against a warm-up baseline;
# writes the "soak" section of benchmarks/RESULTS.md (about 34 min on 2 cores; nothing else should run).
soak: $(BIN)/.installed
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

clean-venv:
	rm -rf $(VENV)
