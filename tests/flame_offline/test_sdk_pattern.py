"""An analysis written the way the FLAME SDK's own end-to-end example is, under the engine.

The SDK's example (``test/test_e2e.py`` of its repository) gives each hospital a differently
named object, fetches with ``query=[]`` (every object), iterates, and writes several results
of different output types to named files. Under the SDK's mock ``query`` is ignored; under
the engine, as in production, ``[]`` must fetch every object and ``None`` none.
"""

from __future__ import annotations

import pickle

import pytest

from flame_offline import NodeFailedError, StarAggregator, StarAnalyzer, StarModelTester


class CountingAnalyzer(StarAnalyzer):
    """Counts the rows of whatever object its data source holds, once per round."""

    def analysis_method(self, data, aggregator_results):
        [source] = data
        [(name, content)] = source.items()
        rows = content.decode().strip().count("\n")  # lines after the header
        self.flame.flame_log(f"{name}: {rows} rows", log_type="info")
        return {"rows": rows, "round": self.num_iterations}


class SummaryAggregator(StarAggregator):
    """Sums the rows; stops after two rounds with a report, a total and a pickled table."""

    def aggregation_method(self, analysis_results):
        total = sum(r["rows"] for r in analysis_results)
        report = f"{len(analysis_results)} hospitals, {total} rows".encode()
        return report, total, [r["rows"] for r in analysis_results]

    def has_converged(self, result, last_result):
        return self.num_iterations >= 1


SPLITS = [
    [{"hospital_a_labeled.csv": b"x,y\n1,0\n2,1\n3,0\n"}],
    [{"hospital_b_labeled.csv": b"x,y\n4,1\n5,1\n"}],
]


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_every_object_with_an_empty_query_and_named_result_files(tmp_path, isolation):
    names = [str(tmp_path / n) for n in ("report.txt", "total.txt", "table.pkl")]
    tester = StarModelTester(
        data_splits=SPLITS,
        analyzer=CountingAnalyzer,
        aggregator=SummaryAggregator,
        data_type="s3",
        query=[],
        multiple_results=True,
        simple_analysis=False,
        output_type=["bytes", "str", "pickle"],
        filename=names,
        isolation=isolation,
        print_result=False,
        log_handler=lambda record: None,
    )
    assert tester.results == [b"2 hospitals, 5 rows", 5, [3, 2]]
    assert (tmp_path / "report.txt").read_bytes() == b"2 hospitals, 5 rows"
    assert (tmp_path / "total.txt").read_text() == "5"
    assert pickle.loads((tmp_path / "table.pkl").read_bytes()) == [3, 2]
    rows = [r.message for r in tester.logs if r.message.endswith("rows")]
    assert rows.count("hospital_a_labeled.csv: 3 rows") == 2  # rounds 0 and 1


def test_without_a_query_the_same_analysis_gets_no_data():
    with pytest.raises(
        NodeFailedError,
        match=r"(?s)TypeError: cannot unpack non-iterable NoneType.*\nNote: this run passed no "
        r"query, so every analyzer got data=None.*query=\['pancreasData.csv'\], or query=\[\] "
        r"for every object",
    ) as info:
        StarModelTester(
            SPLITS,
            CountingAnalyzer,
            SummaryAggregator,
            "s3",
            print_failures=False,
            log_handler=lambda record: None,
        )
    assert info.value.note.startswith("Note: this run passed no query")
