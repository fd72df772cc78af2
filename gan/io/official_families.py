"""Which official network a persistent object in an NVIDIA pickle is, without executing anything.

Real network pickles name each network by its BARE class name ('Generator', 'Discriminator',
'AugmentPipe') plus the source text of the module that defined it; no dotted name says which
repository or module that was. We decide from two signals:

1. The object's state (primary): constructor kwargs (`_init_kwargs`), sub-module names
   (`synthesis.input` + `L0_36_512`... for StyleGAN3, `synthesis.b4`, `b8`... for StyleGAN2,
   `b64` ... `b4` with an epilogue for the discriminator) and buffers (AugmentPipe's `p`).
2. `module_src`, read as text with `ast` (never exec'd, eval'd or compiled to bytecode): the
   classes the module defines and the parameters of its Generator tell StyleGAN3's
   `training/networks_stylegan3.py`, StyleGAN3's `training/networks_stylegan2.py` and
   StyleGAN2-ADA's `training/networks.py` (whose Generator takes `synthesis_kwargs` as a dict)
   apart. A source that contradicts the state is refused.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from gan.errors import ModelLoadError
from gan.io.safe_unpickle import ModuleRecord, PersistentRecord
from gan.networks import NetworkKind, network_kind


@dataclass(frozen=True)
class Family:
    name: str  # short id written into metadata
    module: str  # the official module that defines it
    repository: str


STYLEGAN3 = Family("stylegan3", "training/networks_stylegan3.py", "NVlabs/stylegan3")
STYLEGAN2 = Family("stylegan2", "training/networks_stylegan2.py", "NVlabs/stylegan3")
STYLEGAN2_ADA = Family("stylegan2-ada", "training/networks.py", "NVlabs/stylegan2-ada-pytorch")
AUGMENT = Family("augment", "training/augment.py", "NVlabs/stylegan3 or NVlabs/stylegan2-ada-pytorch")

# The weight layout each family shares (StyleGAN2-ADA's networks are StyleGAN2's).
_LAYOUT_OF = {STYLEGAN3: "stylegan3", STYLEGAN2: "stylegan2", STYLEGAN2_ADA: "stylegan2", AUGMENT: "augment"}

# Our network kinds by role and layout (the official class names they stand for).
_KIND_BY_LAYOUT = {
    ("generator", "stylegan3"): "training.networks_stylegan3.Generator",
    ("generator", "stylegan2"): "training.networks_stylegan2.Generator",
    ("discriminator", "stylegan2"): "training.networks_stylegan2.Discriminator",
}

# Sources larger than this are not parsed (the official modules are 20-45 kB).
MAX_SOURCE_CHARS = 2_000_000

_SG3_LAYER = re.compile(r"L\d+_\d+_\d+")
_BLOCK = re.compile(r"b(\d+)")


@dataclass
class Identified:
    """What a persistent object is: our network kind (None for the augment pipe), its official
    family, and the evidence used (shown by `gan info`, and in errors)."""

    family: Family
    kind: NetworkKind | None
    evidence: list[str] = field(default_factory=list)


# ---- signal 1: the state ---------------------------------------------------------------------


def _modules(record: Any) -> dict:
    if not isinstance(record, (PersistentRecord, ModuleRecord)) or not isinstance(record.state, dict):
        return {}
    modules = record.state.get("_modules")
    return modules if isinstance(modules, dict) else {}


def _buffers(record: PersistentRecord) -> dict:
    buffers = record.state.get("_buffers")
    return buffers if isinstance(buffers, dict) else {}


def _layout_from_state(record: PersistentRecord) -> tuple[str, str, str] | None:
    """(role, layout, evidence) read from the state, or None when it fits no known network."""
    kwargs = record.state.get("_init_kwargs")
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    modules = _modules(record)
    names = {str(n) for n in modules}
    if {"mapping", "synthesis"} <= names:
        synthesis = {str(n) for n in _modules(modules["synthesis"])}
        if "input" in synthesis and any(_SG3_LAYER.fullmatch(n) for n in synthesis):
            return "generator", "stylegan3", "synthesis has `input` and L<i>_<size>_<channels> layers"
        if "b4" in synthesis and all(_BLOCK.fullmatch(n) for n in synthesis):
            return "generator", "stylegan2", "synthesis has blocks b4, b8, ..."
        return None
    blocks = sorted((int(m.group(1)) for n in names if (m := _BLOCK.fullmatch(n))), reverse=True)
    if blocks and blocks[-1] == 4 and len(blocks) == len(names - {"mapping"}) and "z_dim" not in kwargs:
        epilogue = {str(n) for n in _modules(modules["b4"])}
        if {"fc", "out"} <= epilogue:
            return "discriminator", "stylegan2", f"blocks b{blocks[0]} ... b4 ending in an epilogue (fc, out)"
    if not names and "p" in _buffers(record) and {"xflip", "rotate90"} & set(kwargs):
        return "augment", "augment", "buffer `p` and augmentation switches (xflip, rotate90, ...)"
    return None


# ---- signal 2: the module source, parsed as text ---------------------------------------------------


@dataclass
class SourceFacts:
    classes: set[str]
    generator_params: list[str]  # Generator.__init__ parameters ('**name' for a **kwargs)


def read_source(src: str) -> SourceFacts | None:
    """Class names and Generator signature of a module's source text, None when it cannot be
    parsed. ast.parse builds a syntax tree only; nothing is compiled or run."""
    if not isinstance(src, str) or not src or len(src) > MAX_SOURCE_CHARS:
        return None
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    classes, params = set(), []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        classes.add(node.name)
        if node.name != "Generator":
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                args = item.args
                params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                if args.kwarg is not None:
                    params.append("**" + args.kwarg.arg)
    return SourceFacts(classes, params)


def _family_from_source(facts: SourceFacts) -> Family | None:
    if {"SynthesisInput", "SynthesisLayer"} <= facts.classes:
        return STYLEGAN3
    if "AugmentPipe" in facts.classes:
        return AUGMENT
    if "SynthesisBlock" in facts.classes or "DiscriminatorBlock" in facts.classes:
        if "synthesis_kwargs" in facts.generator_params:
            return STYLEGAN2_ADA
        if "**synthesis_kwargs" in facts.generator_params:
            return STYLEGAN2
        return None  # a StyleGAN2 module, but which repository's is not told
    return None


# ---- both -----------------------------------------------------------------------------------------


def identify(record: Any, key: str, source: str) -> Identified:
    """The official network `record` (network `key` of file `source`) is, or ModelLoadError."""
    if not isinstance(record, PersistentRecord):
        raise ModelLoadError(
            f"'{key}' in {source} is a {type(record).__name__}, not a StyleGAN network; "
            "the file is not an official network pickle."
        )
    bare = record.class_name.rsplit(".", 1)[-1]
    found = _layout_from_state(record)
    if found is None:
        raise ModelLoadError(
            f"'{key}' in {source} is a `{record.class_name}` that fits none of the networks this program "
            "knows (StyleGAN3 and StyleGAN2 generators, the StyleGAN2 discriminator, AugmentPipe). "
            "Looked at: "
            f"its sub-modules ({', '.join(map(str, _modules(record))) or 'none'}), constructor arguments "
            f"({', '.join(map(str, record.state.get('_init_kwargs') or {})) or 'none'}) and buffers."
        )
    role, layout, evidence = found
    evidence = [f"state: {evidence}"]
    facts = read_source(record.module_src)
    from_source = _family_from_source(facts) if facts else None
    if facts is None:
        evidence.append("module_src: absent or not parseable, not used")
    else:
        if bare not in facts.classes:
            raise ModelLoadError(
                f"'{key}' in {source} says it is a `{bare}`, but the module source stored with it defines "
                f"no such class (it defines {', '.join(sorted(facts.classes)[:8]) or 'no classes'}); the "
                "file is inconsistent, so it is not loaded."
            )
        evidence.append(f"module_src: defines {bare}" + (f", {from_source.module}" if from_source else ""))

    if role == "augment":
        family = AUGMENT
    elif layout == "stylegan3":
        family = STYLEGAN3
    else:
        kwargs = record.state.get("_init_kwargs")
        nested = isinstance(kwargs, dict) and isinstance(kwargs.get("synthesis_kwargs"), dict)
        family = STYLEGAN2_ADA if nested else (from_source or STYLEGAN2)
        if nested:
            evidence.append("state: constructor takes synthesis_kwargs={...} (StyleGAN2-ADA)")
    if from_source is not None and _LAYOUT_OF[from_source] != _LAYOUT_OF[family]:
        raise ModelLoadError(
            f"'{key}' in {source}: its state is that of a {family.module} network, but the module source "
            f"stored with it is {from_source.module}; the file is inconsistent, so it is not loaded."
        )
    if role == "augment":
        return Identified(family, None, evidence)
    kind = network_kind(_KIND_BY_LAYOUT[(role, layout)])
    if kind.role != ("discriminator" if key == "D" else "generator"):
        raise ModelLoadError(
            f"'{key}' in {source} is a {kind.role} (`{record.class_name}`), expected a "
            f"{'discriminator' if key == 'D' else 'generator'}."
        )
    return Identified(family, kind, evidence)
