"""The prompts file (write/read, validation, atomic replace) and the template method."""

import json
import subprocess
import sys

import pytest

from synthdata.prompts import (
    PromptRecord,
    PromptsError,
    prompt_id,
    read_prompts,
    template_prompts,
    write_prompts,
)


def _recs():
    return [
        PromptRecord(prompt_id(0, 0), 0, "café", "a photo of a café at night", "le"),
        PromptRecord(prompt_id(0, 1), 0, "café", "a photo of a café, inside", "le"),
        PromptRecord(prompt_id(1, 0), 1, "sea, or lake", 'a "quoted" sea, or lake', "template"),
    ]


def test_round_trip_exact_fields_and_utf8(tmp_path):
    path = tmp_path / "sub" / "p.jsonl"
    assert write_prompts(path, _recs()) == 3
    assert read_prompts(path) == _recs()
    lines = path.read_text("utf-8").splitlines()
    assert list(json.loads(lines[0])) == ["id", "class_index", "class_name", "prompt", "source"]
    assert "café" in lines[0]  # UTF-8, not \\u escapes
    assert prompt_id(12, 3) == "c0012-00003"
    assert [p.name for p in path.parent.iterdir()] == ["p.jsonl"]  # no temp file left


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "p.jsonl"
    write_prompts(path, _recs()[:1])
    before = path.read_bytes()
    with pytest.raises(PromptsError, match="duplicate prompt id"):
        write_prompts(path, [*_recs(), _recs()[0]])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", "not JSON"),
        ('{"id": "a", "class_index": 0, "class_name": "x", "prompt": "p"}', "exactly the fields"),
        ('{"id": "a", "class_index": 0, "class_name": "x", "prompt": "p", "source": "le", "extra": 1}', "exactly"),
        ('{"id": "a", "class_index": "0", "class_name": "x", "prompt": "p", "source": "le"}', "wrong field types"),
        ('{"id": "a", "class_index": 0, "class_name": "x", "prompt": "p", "source": "pickle"}', "source must be"),
    ],
)
def test_read_rejects_bad_lines_naming_the_line(tmp_path, line, match):
    path = tmp_path / "p.jsonl"
    good = _recs()[0].to_json()
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(PromptsError, match=match) as info:
        read_prompts(path)
    assert f"{path}:3:" in str(info.value)


def test_template_cycles_and_repeats():
    recs = template_prompts(["cat", "dog"], ["a {}.", "art of the {}."], 3)
    assert [r.prompt for r in recs] == ["a cat.", "art of the cat.", "a cat.", "a dog.", "art of the dog.", "a dog."]
    assert [r.id for r in recs[:3]] == ["c0000-00000", "c0000-00001", "c0000-00002"]
    assert {r.source for r in recs} == {"template"} and [r.class_index for r in recs] == [0, 0, 0, 1, 1, 1]


def test_template_prefix_replaces_templates():
    recs = template_prompts(["sea or lake"], ["ignored {}"], 2, prefix=" a centered satellite photo of ", suffix=".")
    assert [r.prompt for r in recs] == ["a centered satellite photo of sea or lake."] * 2


@pytest.mark.parametrize(
    ("templates", "per_class", "match"),
    [(["a {}"], 0, "at least 1"), ([], 2, "no templates"), (["a photo"], 1, "exactly one"), (["{} {}"], 1, "exactly one")],
)
def test_template_errors(templates, per_class, match):
    with pytest.raises(ValueError, match=match):
        template_prompts(["cat"], templates, per_class)


def test_registry_does_not_import_torch():
    code = (
        "import sys; import synthdata.prompts as p; p.get_dataset('cub'); p.load_class_list; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_prompt_holding_a_unicode_line_separator_reads_back(tmp_path):
    # json.dumps(ensure_ascii=False) writes U+2028, U+2029 and U+0085 unescaped; only \n ends a line
    recs = [PromptRecord(prompt_id(0, n), 0, "cat", f"a cat{sep}on a mat", "le") for n, sep in
            enumerate(["\u2028", "\u2029", "\x85"])]
    path = tmp_path / "p.jsonl"
    write_prompts(path, recs)
    assert read_prompts(path) == recs
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))  # a file saved with CRLF line ends
    assert read_prompts(path) == recs
