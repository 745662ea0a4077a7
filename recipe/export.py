"""Export: what users take away besides the adapter, written so that a kill leaves nothing that looks done.

    merged   the base model with the adapter added into its weights (16-bit for a 16-bit base): PEFT's merge
             on the CPU, or Unsloth's save_pretrained_merged on its backend; loads with AutoModelForCausalLM
    gguf     that merged model converted by llama.cpp's own converter (convert_hf_to_gguf.py) and quantized
             by llama.cpp (llama_model_quantize through llama-cpp-python's bindings), for llama.cpp, Ollama
             and LM Studio, with an Ollama Modelfile that carries the recipe's chat template and stop token

The export itself reaches no network: llama.cpp comes from the pinned llama-cpp-python
(requirements-gguf.txt), built from its source distribution, which vendors llama.cpp. Its wheel holds the
library but not the converter, so convert_hf_to_gguf.py, its conversion/ package and gguf-py/ are unpacked
from the same source distribution into the environment (sys.prefix/share), once: by the first GGUF export
itself, before any training (pip fetches the source distribution, from its cache when it holds it), or by
`python -m recipe.export --get-converter [FILE.tar.gz]` (FILE: a copy for an offline machine).
LLAMA_CPP_CONVERTER=DIR points at another copy (a llama.cpp checkout) instead.

Each export is written into a hidden `.NAME.partial` folder beside its destination and renamed into place
when complete; a stale partial folder from a killed export is removed when the next one starts.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rewards import REASONING_START, SYSTEM_PROMPT

from .errors import SetupError
from .models import advice_on_load_failure
from .runs import atomic_path

# GGUF_QUANTIZATION's values: llama.cpp's file types, as its llama-quantize tool names them (lower case).
# The float types are written by the converter itself; the others are quantized from its 16-bit output.
GGUF_FTYPES = {  # name: llama_ftype (llama.h, LLAMA_FTYPE_*)
    "q4_k_m": 15,
    "q5_k_m": 17,
    "q6_k": 18,
    "q8_0": 7,
    "f16": 1,
    "bf16": 32,
    "f32": 0,
}
CONVERTER_TYPES = ("f32", "f16", "bf16")
INSTALL_GGUF = "pip install -r requirements-gguf.txt"  # the converter follows at the first export (ensure_converter)
# The smoke model's tokenizer is trained by recipe/smoke.py, so llama.cpp's table of known pre-tokenizers
# (hashes of token ids, conversion/base.py get_vocab_base_pre) cannot list it. Its GGUF records Qwen's
# label, the recipe's real family: llama.cpp then splits text the Qwen way, which is close to, but not
# the same as, the smoke tokenizer's own split; token ids (what the CPU test compares) are exact.
SMOKE_PRE_TOKENIZER = "qwen2"


def check_export(how: str, quantization: str = "q4_k_m") -> None:
    """Called before any work is done: a GGUF export needs llama.cpp (library and converter) installed."""
    if how != "gguf":
        return
    if quantization not in GGUF_FTYPES:
        raise SetupError(f"--gguf-quantization must be one of {', '.join(GGUF_FTYPES)}, not {quantization!r}")
    missing = missing_packages()
    if missing:
        raise SetupError(f"--export gguf needs llama.cpp ({', '.join(missing)} not installed). Install it: {INSTALL_GGUF}")
    try:
        import llama_cpp  # noqa: F401 - loads the compiled library: a broken build shows here, not after training
    except Exception as e:  # noqa: BLE001 - any load failure: say what to reinstall
        raise SetupError(
            f"llama-cpp-python does not load ({type(e).__name__}: {str(e)[:300]}). Reinstall it: {INSTALL_GGUF}"
        ) from None
    ensure_converter()


def ensure_converter() -> None:
    """llama.cpp's converter in converter_dir(). When it is not there, unpack it from the installed
    llama-cpp-python's source distribution, as --get-converter does, and say so; a SetupError with the
    commands that do it by hand only when that fails (no network and nothing in pip's cache, say)."""
    if (converter_dir() / "convert_hf_to_gguf.py").exists():
        return
    if os.environ.get("LLAMA_CPP_CONVERTER"):  # the user's own copy: never replaced by the pinned one
        raise SetupError(
            f"LLAMA_CPP_CONVERTER={os.environ['LLAMA_CPP_CONVERTER']} holds no convert_hf_to_gguf.py: point it at "
            "a llama.cpp checkout, or unset it to use the converter of the pinned llama-cpp-python"
        )
    version = llama_version()
    print(
        f"llama.cpp's converter is not in {converter_dir()} yet: unpacking it from llama-cpp-python {version}'s "
        "source distribution (pip download; once)",
        flush=True,
    )
    try:
        get_converter()
    except (OSError, subprocess.CalledProcessError, SetupError) as e:
        why = str(e).strip().splitlines()[-1][:300] if str(e).strip() else type(e).__name__
        raise SetupError(
            f"--export gguf needs llama.cpp's converter, and it could not be fetched ({why}). Where pip reaches "
            "PyPI: python -m recipe.export --get-converter. Offline: copy "
            f"llama_cpp_python-{version}.tar.gz from a machine that has it (pip download --no-deps --no-binary "
            f":all: llama-cpp-python=={version}) and run python -m recipe.export --get-converter FILE.tar.gz; or "
            "set LLAMA_CPP_CONVERTER to a llama.cpp checkout"
        ) from None


def llama_version() -> str:
    """The installed llama-cpp-python's version, "missing" when it is not installed."""
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def missing_packages() -> list[str]:
    """What --export gguf needs from requirements-gguf.txt and cannot find: llama-cpp-python (the library
    and its quantizer) and sentencepiece (the converter imports it)."""
    return [name for name in ("llama_cpp", "sentencepiece") if importlib.util.find_spec(name) is None]


def export_model(model, tokenizer, S: dict, adapter: Path, backend: str, folder: Path) -> Path:
    """S["export"] of the trained run into `folder`: `merged` or `gguf` (S["gguf_quantization"]).

    `model` (with its adapter) is used on the Unsloth backend, whose merge is its own; elsewhere, and when
    `model` is None, the saved `adapter` is merged into the base model by PEFT. Returns `folder`."""
    how = S["export"]
    check_export(how, S.get("gguf_quantization", "q4_k_m"))
    with staging(folder) as tmp:
        merged = tmp if how == "merged" else tmp / "merged"
        if backend == "unsloth" and model is not None:
            model.save_pretrained_merged(str(merged), tokenizer, save_method="merged_16bit")
        else:
            merge_adapter(S["model_name"], adapter, merged)
        about = {"adapter": str(adapter), "base": S["model_name"], "export": how}
        if how == "gguf":
            pre_tokenizer = SMOKE_PRE_TOKENIZER if S.get("smoke") else None
            gguf = write_gguf(merged, tmp, S["gguf_quantization"], pre_tokenizer=pre_tokenizer)
            write_modelfile(tmp, gguf.name, eos_token(merged))
            shutil.rmtree(merged)  # a second full copy of the weights; `--export merged` keeps one
            about.update(quantization=S["gguf_quantization"], file=gguf.name)
        (tmp / "export.json").write_text(json.dumps(about, indent=2) + "\n")
    return folder


@contextlib.contextmanager
def staging(folder: Path):
    """A fresh hidden folder beside `folder` that takes its place only when the block ends without error:
    the run folder's own atomic write (recipe/runs.py), given an empty folder to fill."""
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        yield tmp


def merge_adapter(base: str, adapter: Path, folder: Path) -> Path:
    """PEFT's merge: the base model in its own precision on the CPU (the GPU keeps what it holds),
    the adapter added into its weights, saved with the tokenizer and chat template."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with advice_on_load_failure(base):
        model = AutoModelForCausalLM.from_pretrained(base, dtype="auto", device_map={"": "cpu"})
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(folder))
    return folder


# ----------------------------------------------------------------------------- GGUF
def converter_dir() -> Path:
    """Where llama.cpp's converter is: LLAMA_CPP_CONVERTER, else the copy --get-converter unpacked for the
    installed llama-cpp-python (same version, so converter and library agree on the format)."""
    if os.environ.get("LLAMA_CPP_CONVERTER"):
        return Path(os.environ["LLAMA_CPP_CONVERTER"]).expanduser()
    return Path(sys.prefix) / "share" / f"llama-cpp-python-{llama_version()}"


def write_gguf(merged: Path, folder: Path, quantization: str, pre_tokenizer: str | None = None) -> Path:
    """folder/model-QUANTIZATION.gguf from the merged model in `merged`: llama.cpp's converter, then for a
    quantized type llama.cpp's quantizer on the converter's 16-bit file (removed after)."""
    out = folder / f"model-{quantization}.gguf"
    if quantization in CONVERTER_TYPES:
        return convert(merged, out, quantization, pre_tokenizer)
    # "auto": the converter's own choice of 16-bit type (bf16 for a bf16 model, f16 otherwise)
    sixteen_bit = convert(merged, folder / "model-16bit.gguf", "auto", pre_tokenizer)
    quantize(sixteen_bit, out, quantization)
    sixteen_bit.unlink()
    return out


def convert(merged: Path, out: Path, outtype: str, pre_tokenizer: str | None = None) -> Path:
    """llama.cpp's convert_hf_to_gguf.py, in a child process; its output goes to llama.cpp.log beside `out`.

    pre_tokenizer: the label to record for a BPE tokenizer the converter does not recognise (the smoke
    model's), instead of stopping; None for real models, which the converter looks up itself."""
    script = converter_dir() / "convert_hf_to_gguf.py"
    command = [sys.executable, "-c", RUN_CONVERTER, str(script), pre_tokenizer or "", str(merged),
               "--outfile", str(out), "--outtype", outtype]  # fmt: skip
    run_logged(command, out.parent / "llama.cpp.log", "llama.cpp's converter")
    return out


def quantize(source: Path, out: Path, quantization: str) -> Path:
    """llama.cpp's quantizer on a 16-bit GGUF, in a child process (output to llama.cpp.log beside `out`)."""
    threads = str(os.cpu_count() or 1)
    command = [sys.executable, "-c", QUANTIZE, str(source), str(out), str(GGUF_FTYPES[quantization]), threads]
    run_logged(command, out.parent / "llama.cpp.log", f"llama.cpp's quantization to {quantization}")
    return out


# The converter, run as its own script would be, with its vendored gguf-py first on the path (as the script
# itself arranges), and optionally one pre-tokenizer label given instead of looked up.
RUN_CONVERTER = """
import os, runpy, sys
script, pre_tokenizer = sys.argv[1], sys.argv[2]
here = os.path.dirname(script)
sys.path[:0] = [here, os.path.join(here, "gguf-py")]
sys.argv = [script, *sys.argv[3:]]
if pre_tokenizer:
    from conversion.base import TextModel
    TextModel.get_vocab_base_pre = lambda self, tokenizer: pre_tokenizer
runpy.run_path(script, run_name="__main__")
"""

# llama.cpp's quantizer through llama-cpp-python's ctypes bindings (llama.h: llama_model_quantize).
QUANTIZE = """
import sys
import llama_cpp
source, target, ftype, threads = sys.argv[1:]
llama_cpp.llama_backend_init()
params = llama_cpp.llama_model_quantize_default_params()
params.ftype, params.nthread = int(ftype), int(threads)
sys.exit(llama_cpp.llama_model_quantize(source.encode(), target.encode(), params))
"""


def run_logged(command: list[str], log: Path, what: str) -> None:
    """Run a child process offline, its output appended to `log`; a failure ends in SetupError with its tail."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with log.open("a") as out:
        out.write(f"$ {' '.join(command[:2])} ... {' '.join(command[3:])}\n")
        out.flush()
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        hint = ""
        if any("pre-tokenizer was not recognized" in line for line in tail):
            hint = (
                "\nllama.cpp does not know this model's tokenizer (its pre-tokenizer table, conversion/base.py "
                "get_vocab_base_pre). A newer llama-cpp-python may; or export --export merged and convert it "
                "with a llama.cpp that does."
            )
        raise SetupError(f"{what} failed (exit {code}); last lines of its log:\n" + "\n".join(tail) + hint)


def eos_token(merged: Path) -> str:
    """The token that ends an answer: the saved tokenizer's eos, which the recipe's template puts after
    the system prompt and after every assistant turn (Qwen's <|endoftext|>)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(merged)).eos_token


def ollama_template(eos: str) -> str:
    """The recipe's chat template (recipe/data.py chat_template) in Ollama's Go template syntax: the system
    prompt + eos, each user turn as is, each assistant turn + eos, then the tag that opens the working."""
    return (
        "{{ if .System }}{{ .System }}{{ else }}" + SYSTEM_PROMPT + "{{ end }}" + eos + "\n"
        "{{- range .Messages }}\n"
        '{{- if eq .Role "user" }}{{ .Content }}\n'
        '{{- else if eq .Role "assistant" }}{{ .Content }}' + eos + "\n"
        "{{- end }}\n"
        "{{- end }}" + REASONING_START
    )


def write_modelfile(folder: Path, gguf_name: str, eos: str) -> Path:
    """An Ollama Modelfile beside the GGUF: `ollama create NAME -f Modelfile` in that folder."""
    text = (
        f"FROM ./{gguf_name}\n"
        f'TEMPLATE """{ollama_template(eos)}"""\n'
        f'SYSTEM """{SYSTEM_PROMPT}"""\n'
        f'PARAMETER stop "{eos}"\n'
    )
    (folder / "Modelfile").write_text(text)
    return folder / "Modelfile"


# ----------------------------------------------------------------------------- install step
def get_converter(sdist: str = "") -> Path:
    """Unpack llama.cpp's converter from llama-cpp-python's source distribution into converter_dir():
    `sdist` (a .tar.gz on disk, for an offline machine), or the pinned one downloaded by pip."""
    version = llama_version()
    if version == "missing":
        raise SetupError(f"llama-cpp-python is not installed: {INSTALL_GGUF}")
    dest = converter_dir()
    with tempfile.TemporaryDirectory() as download:
        sdist = sdist or str(download_sdist(version, Path(download)))
        import tarfile

        prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
        wanted = ("convert_hf_to_gguf.py", "LICENSE", "conversion/", "gguf-py/gguf/")
        with tarfile.open(sdist) as archive, staging(dest) as tmp:
            members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
            members = [m for m in members if m.name[len(prefix) :].startswith(wanted)]
            if not any(m.name.endswith("convert_hf_to_gguf.py") for m in members):
                raise SetupError(f"{sdist} is not llama-cpp-python {version}'s source distribution")
            for m in members:
                m.name = m.name[len(prefix) :]
            archive.extractall(tmp, members=members, filter="data")
    print(f"llama.cpp's converter (llama-cpp-python {version}): {dest}")
    return dest


def download_sdist(version: str, folder: Path) -> Path:
    """llama-cpp-python==version's source distribution, by pip (its cache, else the index), into `folder`;
    pip's output is kept for the error when it fails."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"llama-cpp-python=={version}", "-d", str(folder)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"pip download failed: {(done.stderr or done.stdout).strip()[-300:]}")
    found = sorted(folder.glob("llama_cpp_python-*.tar.gz"))
    if not found:
        raise SetupError(f"pip download gave no llama_cpp_python-{version}.tar.gz in {folder}")
    return found[0]


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--get-converter":
        get_converter(sys.argv[2] if len(sys.argv) > 2 else "")
    else:
        print("usage: python -m recipe.export --get-converter [llama_cpp_python-VERSION.tar.gz]")
        sys.exit(2)
