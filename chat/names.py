"""When two names are the same name: the keys the name registries compare.

Two names clash when their `name_key`s are equal (they differ only in case)
or when their `skeleton_key`s are equal (they look alike: "Seiya" and a
"Seiya" whose i is the Cyrillic U+0456; "Shun0" and "ShunO"). Neither key
implies the other: "Seiya" and "SEIYA" differ only in case, yet their
skeletons differ ("I" looks like "l", "i" does not), which is why the
registries keep both.

The skeleton is UTS #39's, from ICU's spoof checker (PyICU), so it follows
the Unicode confusables data rather than a table of our own. Skeletons can
change between ICU releases, so every process sharing one Redis must run the
same pinned ICU (requirements.txt); a key is never stored longer than its
member's presence entry, so an upgrade needs no migration.

Pure functions, no I/O and no settings.
"""

from __future__ import annotations

import functools
import unicodedata

import icu

# getSkeleton's first argument chose a confusables table until ICU 58, which
# deprecated it ("you may pass any number": there is one table now); PyICU
# still requires it.
_SKELETON_TYPE = 0

# Bidirectional embeddings, overrides and isolates: each reorders the text
# after it, so "\u202enimda" shows as "admin". U+200E and U+200F, the marks,
# only nudge neutral characters and stay allowed (SPEC), as does every other
# format character.
BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def name_key(name: str) -> str:
    """The form in which names that differ only in case are equal (SPEC: case folding).

    Names that differ only in how their characters are encoded ("É" as one
    code point, or as "E" and a combining accent) may have two name keys;
    their skeleton keys are one, since those start from NFKC.
    """
    return name.casefold()


@functools.cache
def _spoof_checker() -> icu.SpoofChecker:
    """The one spoof checker of this process, made on first use.

    Sharing it between threads is safe: ICU's uspoof.h says the functions
    that take a const checker, getSkeleton among them, may run concurrently
    on one instance, and nothing here configures it after it is made. Two
    threads racing through the first call may each make one; both are equal.
    """
    return icu.SpoofChecker()


def skeleton_key(name: str) -> str:
    """`casefold(skeleton(NFKC(name)))`: names that look alike have one key (SPEC).

    The skeleton also drops default-ignorable characters (U+200B, U+200D),
    so an invisible character cannot make a second "Seiya" either.
    """
    skeleton = _spoof_checker().getSkeleton(_SKELETON_TYPE, unicodedata.normalize("NFKC", name))
    return skeleton.casefold()


def clash(first: str, second: str) -> bool:
    """Whether two names cannot both be in one room."""
    return name_key(first) == name_key(second) or skeleton_key(first) == skeleton_key(second)


def has_bidi_control(name: str) -> bool:
    """Whether `name` holds a character that reorders the text around it (BIDI_CONTROLS)."""
    return not BIDI_CONTROLS.isdisjoint(name)
