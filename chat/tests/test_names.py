"""The name keys: which names are one name (SPEC "Names nobody can impersonate")."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from chat.names import BIDI_CONTROLS, clash, has_bidi_control, name_key, skeleton_key
from chat.presence.memory import LocalPresence

# Written as escapes: the point of each pair is that it cannot be told apart.
GREEK_ETA = "\u0397"
CYRILLIC_I = "\u0456"

LOOK_ALIKES = [
    ("Hyoga", GREEK_ETA + "yoga"),
    ("Shun0", "ShunO"),
    ("Seiya", "Se" + CYRILLIC_I + "ya"),
    ("Ikki", "lkki"),  # a capital I and a small L
    ("Seiya", "Sei\u200bya"),  # a zero-width space shows nothing
    ("Seiya", "Sei\u200dya"),  # nor does a lone zero-width joiner
]
CASE_PAIRS = [("Seiya", "SEIYA"), ("Shiryu", "shiryu"), ("Ömer", "öMER"), ("Straße", "STRASSE")]
DIFFERENT = [
    ("Seiya", "Shiryu"),
    ("Hyoga", "Hyogo"),
    ("Shun", "Shun0"),
    ("Ann", "Anna"),
    ("Ikki", "Ikki2"),
    ("Émile", "Emile"),  # an accent is not a look-alike
    ("Seiya", "Seiya 2"),
]


@pytest.mark.parametrize(("first", "second"), LOOK_ALIKES)
def test_look_alikes_share_a_skeleton_key(first, second):
    assert first != second
    assert name_key(first) != name_key(second)
    assert skeleton_key(first) == skeleton_key(second)
    assert clash(first, second) and clash(second, first)


@pytest.mark.parametrize(("first", "second"), CASE_PAIRS)
def test_names_that_differ_in_case_share_a_name_key(first, second):
    assert name_key(first) == name_key(second)
    assert clash(first, second)


def test_a_case_pair_need_not_share_a_skeleton_key():
    """Why the registries keep both keys: "I" looks like "l", "i" does not."""
    assert name_key("Seiya") == name_key("SEIYA")
    assert skeleton_key("Seiya") != skeleton_key("SEIYA")


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_different_names_do_not_clash(first, second):
    assert name_key(first) != name_key(second)
    assert skeleton_key(first) != skeleton_key(second)
    assert not clash(first, second)


def test_compatibility_forms_clash_as_their_plain_form():
    """NFKC first: a fullwidth or ligature spelling is the plain name."""
    assert clash("\uff33\uff45\uff49\uff59\uff41", "Seiya")
    assert clash("\ufb00", "ff")


def test_bidi_controls_are_the_embeddings_overrides_and_isolates():
    assert {f"U+{ord(char):04X}" for char in BIDI_CONTROLS} == {
        *(f"U+{code:04X}" for code in range(0x202A, 0x202F)),
        *(f"U+{code:04X}" for code in range(0x2066, 0x206A)),
    }
    assert has_bidi_control("\u202enimda")
    assert has_bidi_control("Seiya\u2067")
    for allowed in ["Seiya", "a\u200db", "a\u200bb", "a\u200eb", "a\u200fb", "مرحبا"]:
        assert not has_bidi_control(allowed), allowed


# Properties. Names as a person could type them: any character but the ones
# clean_name refuses (surrogates cannot be sent as UTF-8 at all). The
# Hypothesis profile (conftest.py) sets no deadline: the machine may be busy.
names = st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=32)


# Names whose encodings differ: precomposed letters and the combining marks
# they are made of, marks whose canonical order matters (U+0323 before
# U+0301), Hangul syllables (three jamo each in NFD), singletons (U+212B
# ANGSTROM SIGN is U+00C5) and compatibility forms (U+FB01, "fi").
composable = st.one_of(
    st.sampled_from([*"AEIOUaeiouÅåÉéÑñÇçØøẛ", "\u212b", "\u2126", "\ufb01", "\u0958", "\u0344"]),
    st.characters(min_codepoint=0x0300, max_codepoint=0x036F),
    st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
)
encodable_names = st.text(
    st.one_of(composable, st.characters(exclude_categories=["Cc", "Cs"])), min_size=1, max_size=32
)
FORMS = ["NFC", "NFD", "NFKC", "NFKD"]


@given(encodable_names, st.sampled_from(FORMS), st.sampled_from(FORMS))
@example("E\u0301mile", "NFC", "NFD")
@example("\ud55c\uad6d", "NFC", "NFD")
@example("a\u0301\u0323", "NFD", "NFKC")
def test_skeleton_keys_are_stable_under_normalisation(name, form, other_form):
    """A name's look does not depend on how its characters were encoded."""
    first, second = unicodedata.normalize(form, name), unicodedata.normalize(other_form, name)
    assert skeleton_key(first) == skeleton_key(second) == skeleton_key(name)
    assert clash(first, second) and clash(second, first)


@given(encodable_names, st.sampled_from(FORMS), st.sampled_from(FORMS))
async def test_a_registry_refuses_a_name_spelled_in_another_normal_form(name, form, other_form):
    """Where the keys are compared: a room holds one of a name's encodings."""
    first, second = unicodedata.normalize(form, name), unicodedata.normalize(other_form, name)
    presence = LocalPresence()
    assert (await presence.claim(room="lobby", name=first, member="one")).won
    assert not (await presence.claim(room="lobby", name=second, member="two")).won
    assert await presence.members(room="lobby") == [first]


def test_an_encoding_apart_is_a_skeleton_clash():
    composed, decomposed = "\u00c9mile", "E\u0301mile"
    assert name_key(composed) != name_key(decomposed)
    assert skeleton_key(composed) == skeleton_key(decomposed)


@given(names)
def test_a_name_clashes_with_its_case_folded_form(name):
    assert clash(name, name.casefold())
    assert clash(name.casefold(), name)


# The characters whose small (case-folded) form has their look: most of them,
# but not "I" (like "l", unlike "i"), "M" (unlike "m", which is like "rn") and
# a few hundred others, such as Greek and Cyrillic capitals. Taken from ICU's
# data, code point by code point, across the Basic Multilingual Plane.
KEEP_LOOK_WHEN_FOLDED = frozenset(
    char
    for char in map(chr, range(0x20, 0x10000))
    if unicodedata.category(char) not in ("Cc", "Cs", "Cn")
    and skeleton_key(char) == skeleton_key(name_key(char))
)
CASE_CHANGES = [str.upper, str.lower, str.swapcase, str.title, str.capitalize, str.casefold]


def test_some_capitals_do_not_keep_their_look_when_folded():
    assert {"I", "M", GREEK_ETA} <= set(map(chr, range(0x20, 0x10000))) - KEEP_LOOK_WHEN_FOLDED
    assert {"i", "m", "l", "S", "η", CYRILLIC_I} <= KEEP_LOOK_WHEN_FOLDED


@given(
    st.text(alphabet=st.sampled_from(sorted(KEEP_LOOK_WHEN_FOLDED)), min_size=1, max_size=32),
    st.sampled_from(CASE_CHANGES),
)
def test_a_case_clash_is_a_skeleton_clash_when_no_character_changes_look(name, change):
    """Where the implication holds: both names made of such characters only."""
    other = change(name)
    assume(KEEP_LOOK_WHEN_FOLDED.issuperset(other))
    assume(name_key(name) == name_key(other))
    assert skeleton_key(name) == skeleton_key(other)
