import pytest

from tools.builtins.data_analysis import DataAnalysisArgs, data_analysis
from tools.registry import ToolError


def run(**arguments):
    return data_analysis(DataAnalysisArgs(**arguments), None)


def test_numbers():
    result = run(numbers=[1, 2, 3, 4, 5])
    assert result == {"count": 5, "mean": 3.0, "median": 3, "stdev": 1.5811388301, "min": 1, "max": 5,
                      "q1": 2.0, "q3": 4.0}


def test_single_value_has_no_stdev():
    assert run(numbers=[7])["stdev"] is None
    assert run(numbers=[7])["q1"] == 7


def test_csv_named_column():
    text = "city,population,area\nA,100,5\nB,300,7\nC,200,9\n"
    result = run(csv=text, column="population")
    assert result["column"] == "population"
    assert result["mean"] == 200.0 and result["median"] == 200 and result["count"] == 3


def test_csv_single_numeric_column_is_found():
    result = run(csv="name,score\na,1\nb,3\n")
    assert result["column"] == "score" and result["mean"] == 2.0


@pytest.mark.parametrize(("arguments", "message"), [
    ({}, "either numbers or csv"),
    ({"numbers": [1], "csv": "a\n1"}, "either numbers or csv"),
    ({"numbers": []}, "no values"),
    ({"numbers": [1, float("nan")]}, "finite"),
    ({"csv": "a,b\n1,2\n"}, "say which column"),
    ({"csv": "a\n"}, "header row and at least one data row"),
    ({"csv": "a,b\n1,2\n", "column": "c"}, "no column 'c'"),
    ({"csv": "a,b\n1,x\n3,4\n", "column": "b"}, "row 2, column 'b': 'x' is not a number"),
])
def test_errors(arguments, message):
    with pytest.raises(ToolError, match=message):
        run(**arguments)
