"""The machinery behind train_grpo.py, one concern a file.

    errors.py    SetupError: bad settings, data or machine, reported before time is spent
    settings.py  command-line overrides, type checks, settings that cannot work together, --help
    check.py     --check: settings, data and reference answers on any machine, before a model loads
    data.py      datasets -> chat prompts, the chat template, prompt-length filter, held-out split, priming rows
    smoke.py     the tiny offline model and tokenizer, and the smoke settings
    models.py    backend choice, Unsloth or transformers + PEFT loading, precision, CPU kernel stand-in
    export.py    merged 16-bit model and GGUF (llama.cpp's converter and quantizer, Ollama Modelfile)
    training.py  the SFT and GRPO configurations, and the objective the trainer actually uses
    runs.py      the run folder: status, resume, signals, divergence guard, atomic writes
    evaluate.py  base / primed / trained: generation and scoring with rewards.py
    report.py    comparison.json / .md, the printed table and the plots

Nothing here imports train_grpo.py, and heavy libraries (torch, transformers, trl) are imported inside
functions, so that train_grpo.py can import Unsloth before them on a GPU.
"""
