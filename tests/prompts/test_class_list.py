"""load_class_list: txt, JSON and CSV class lists, and clear errors for bad files."""

import pytest

from synthdata.prompts import ClassListError, load_class_list


def test_txt_ignores_comments_and_blanks(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("# my classes\n\nred fox\n  snow   owl \n# end\n")
    assert load_class_list(p) == ("red fox", "snow owl")


def test_json_list_and_object(tmp_path):
    a = tmp_path / "a.json"
    a.write_text('["cat", "dog"]')
    b = tmp_path / "b.json"
    b.write_text('{"classes": ["cat", "dog", "emu"], "note": "x"}')
    assert load_class_list(a) == ("cat", "dog")
    assert load_class_list(b) == ("cat", "dog", "emu")


def test_csv_named_column_and_single_column(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("index,class_name\n0,cat\n1,\"sea, or lake\"\n")
    b = tmp_path / "b.csv"
    b.write_text("cat\ndog\n")
    c = tmp_path / "c.csv"
    c.write_text("name\ncat\ndog\n")
    d = tmp_path / "d.csv"
    d.write_text("id,name\n3,cat\n")
    assert load_class_list(a) == ("cat", "sea, or lake")
    assert load_class_list(b) == ("cat", "dog")
    assert load_class_list(c) == ("cat", "dog")
    assert load_class_list(d) == ("cat",)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("bad.json", "[1, 2]", "list of strings"),
        ("bad2.json", "{not json", "not valid JSON"),
        ("obj.json", '{"labels": ["a"]}', '"classes"'),
        ("empty.txt", "# nothing\n\n", "no class names"),
        ("dup.txt", "cat\nCat\n", "appears twice"),
        ("multi.csv", "a,b\n1,2\n", "class_name"),
    ],
)
def test_bad_files(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(ClassListError, match=match):
        load_class_list(p)


def test_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_class_list(tmp_path / "nope.txt")
