"""The command-line tools' shared one-line error: one line, KeyError without quotes, exit code 2."""

from gzllava.cli_errors import one_line, report_input_error


def test_one_line_folds_newlines_and_unquotes_key_errors():
    assert one_line(ValueError("bad recipe\n  key: x")) == "bad recipe key: x"
    assert one_line(KeyError("column 'votes' missing")) == "column 'votes' missing"
    assert one_line(OSError()) == "OSError"


def test_report_is_one_stderr_line_with_exit_code_2(capsys):
    try:
        raise ValueError("--dataset_name data/x: no such folder")
    except ValueError as err:
        assert report_input_error("tool.py", err, debug=False) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["tool.py: error: --dataset_name data/x: no such folder (--debug for the traceback)"]
    try:
        raise ValueError("boom")
    except ValueError as error:
        report_input_error("tool.py", error, debug=True)
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("tool.py: error: boom")
