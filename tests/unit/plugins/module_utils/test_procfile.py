"""module_utils/procfile: Procfiles read as honcho and the platforms read them."""

from tests.unit.conftest import load_module_utils

procfile = load_module_utils("procfile")


def test_process_types_and_commands(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text(
        "# comment\nrelease: python app/manage.py migrate --noinput\n"
        "web:   bin/dyno\nnot a line\nworker-2: bin/dyno worker\n"
    )
    assert procfile.read_procfile(str(path)) == {
        "release": "python app/manage.py migrate --noinput",
        "web": "bin/dyno",
        "worker-2": "bin/dyno worker",
    }


def test_unreadable_is_none(tmp_path):
    assert procfile.read_procfile(str(tmp_path / "absent")) is None
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    assert procfile.read_procfile(str(tmp_path / "binary")) is None


def test_command_words_and_manage_py():
    assert procfile.command_words("exec gunicorn -c 'a b.py'") == ["gunicorn", "-c", "a b.py"]
    assert procfile.command_words("echo 'unclosed") == []
    assert procfile.manage_py("python src/manage.py migrate") == "src/manage.py"
    assert procfile.manage_py("exec ./manage.py migrate") == "./manage.py"
    assert procfile.manage_py("python -m django migrate") is None
