"""Opening a file to sum: path safety under the local root, S3 through a connection, typed problems."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devservices.s3_server import LocalS3, create_bucket, s3_hook
from include.column_sums.problems import (
    CsvProblem,
    InvalidLocation,
    NotFound,
    OutsideRoot,
    SourceChanged,
    StorageNotConfigured,
)
from include.column_sums.storage import open_source, parse_location
from include.column_sums.sums import sum_columns
from include.common.s3_stream import ResumePolicy
from tests.conftest import S3_CONN_ID
from tests.reliability.s3_proxy import Fault, FaultyS3Proxy

HEADER = ",".join(f"c{index}" for index in range(1, 11))
CSV = (HEADER + "\n" + "".join(",".join(["x"] * 9 + [f"{row}.5"]) + "\n" for row in range(2000))).encode()
TENTH_SUM = "2000000.0"  # 0.5 + 1.5 + … + 1999.5
BUCKET = "column-sums-storage"
# No waiting between tries: the tests check what is read, not how long it took.
IMPATIENT = ResumePolicy(first_delay=0.0, max_delay=0.0)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ with a nested file and links; secret.csv and root-other/ beside it, outside."""
    root = tmp_path / "root"
    (root / "2026" / "december").mkdir(parents=True)
    (root / "2026" / "december" / "grades.csv").write_bytes(CSV)
    (tmp_path / "secret.csv").write_bytes(b"password\nhunter2\n")
    (tmp_path / "root-other").mkdir()
    (tmp_path / "root-other" / "f.csv").write_bytes(CSV)
    (root / "link-out.csv").symlink_to(tmp_path / "secret.csv")
    (root / "folder-out").symlink_to(tmp_path)
    (root / "link-in.csv").symlink_to(root / "2026" / "december" / "grades.csv")
    return root


def read_local(location: str, root: Path | None) -> bytes:
    with open_source(location, local_root=root, aws_conn_id=None) as source:
        return source.stream.read()


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("../secret.csv", id="dot-dot"),
        pytest.param("2026/../../secret.csv", id="dot-dot-after-a-folder"),
        pytest.param("../root-other/f.csv", id="sibling-whose-name-starts-with-the-roots"),
        pytest.param("link-out.csv", id="symlink-to-a-file-outside"),
        pytest.param("folder-out/secret.csv", id="symlink-to-a-folder-outside"),
        pytest.param("/etc/passwd", id="absolute-path-elsewhere"),
    ],
)
def test_a_path_that_escapes_the_root_is_refused(tree: Path, location: str) -> None:
    with pytest.raises(OutsideRoot) as refused:
        read_local(location, tree)
    assert refused.value.code == "outside_root"
    assert str(tree.parent) not in str(refused.value), "the message must not reveal the server's folders"


def test_an_absolute_path_to_a_file_beside_the_root_is_refused(tree: Path) -> None:
    with pytest.raises(OutsideRoot):
        read_local(str(tree.parent / "secret.csv"), tree)


@pytest.mark.parametrize(
    "location",
    [
        "2026/december/grades.csv",
        "2026/./december/../december/grades.csv",
        "link-in.csv",
    ],
)
def test_a_path_that_stays_inside_the_root_is_read(tree: Path, location: str) -> None:
    assert read_local(location, tree) == CSV


def test_an_absolute_path_inside_the_root_is_read(tree: Path) -> None:
    assert read_local(str(tree / "2026" / "december" / "grades.csv"), tree) == CSV


def test_a_root_configured_through_a_link_is_resolved_before_the_check(tmp_path: Path, tree: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree)
    assert read_local("2026/december/grades.csv", alias) == CSV
    with pytest.raises(OutsideRoot):
        read_local("../secret.csv", alias)


@pytest.mark.parametrize(
    ("location", "problem", "message"),
    [
        ("2026/december/missing.csv", NotFound, "does not exist"),
        ("2026/december", NotFound, "is a folder"),
        ("", InvalidLocation, "empty"),
        ("a\x00b.csv", InvalidLocation, "empty"),
        ("file:///etc/passwd", InvalidLocation, "only s3://bucket/key"),
        ("https://example.com/f.csv", InvalidLocation, "only s3://bucket/key"),
    ],
)
def test_what_cannot_be_opened_is_a_typed_problem(
    tree: Path, location: str, problem: type[CsvProblem], message: str
) -> None:
    with pytest.raises(problem, match=message) as raised:
        read_local(location, tree)
    assert raised.value.to_json() == {"code": problem.code, "message": str(raised.value)}


def test_a_loop_of_symbolic_links_is_refused(tree: Path) -> None:
    (tree / "loop-a").symlink_to(tree / "loop-b")
    (tree / "loop-b").symlink_to(tree / "loop-a")
    with pytest.raises(InvalidLocation, match="cannot be resolved"):
        read_local("loop-a", tree)


def test_local_files_are_refused_when_no_root_is_configured() -> None:
    with pytest.raises(StorageNotConfigured, match="local disk is not enabled"):
        read_local("2026/december/grades.csv", None)


def test_a_missing_root_is_a_configuration_problem(tmp_path: Path) -> None:
    with pytest.raises(StorageNotConfigured, match="does not exist on this worker"):
        read_local("f.csv", tmp_path / "nowhere")


def test_a_local_file_written_to_during_the_read_is_reported_changed(tree: Path) -> None:
    def read_while_appending() -> None:
        with open_source("2026/december/grades.csv", local_root=tree, aws_conn_id=None) as source:
            source.stream.read(100)
            with (tree / "2026" / "december" / "grades.csv").open("ab") as appending:
                appending.write(b"late,row\n")
            source.stream.read()

    with pytest.raises(SourceChanged, match="written to while it was read"):
        read_while_appending()


def test_a_local_source_is_summed_and_says_what_was_opened(tree: Path) -> None:
    path = tree / "2026" / "december" / "grades.csv"
    with open_source("2026/december/grades.csv", local_root=tree, aws_conn_id=None) as source:
        assert source.info.location == "2026/december/grades.csv"
        assert source.info.size == len(CSV)
        assert source.info.version == str(path.stat().st_mtime_ns)
        assert source.resumes == 0
        assert str(sum_columns(source.stream).columns[0].sum) == TENTH_SUM


@pytest.mark.parametrize("location", ["s3://bucket", "s3://bucket/", "s3:///key", "s3://bucket/folder/"])
def test_an_s3_location_without_an_object_is_invalid(location: str) -> None:
    with pytest.raises(InvalidLocation, match="names no object"):
        parse_location(location)


# S3: the real S3-compatible server, directly or behind the fault-injecting proxy.


@pytest.fixture(scope="module")
def uploaded(s3_server: LocalS3) -> str:
    create_bucket(S3_CONN_ID, BUCKET)
    s3_hook(S3_CONN_ID).get_conn().put_object(Bucket=BUCKET, Key="in/grades.csv", Body=CSV)
    return f"s3://{BUCKET}/in/grades.csv"


@pytest.fixture
def flaky_s3(s3_server: LocalS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FaultyS3Proxy]]:
    """A connection id whose endpoint is the fault-injecting proxy, and the proxy."""
    with FaultyS3Proxy(s3_server.endpoint_url) as proxy:
        connection = s3_server.connection()
        connection["extra"] = {**connection["extra"], "endpoint_url": proxy.endpoint_url}
        monkeypatch.setenv("AIRFLOW_CONN_COLUMN_SUMS_FLAKY_S3", json.dumps(connection))
        yield "column_sums_flaky_s3", proxy


def test_an_s3_object_is_summed_through_the_connection(uploaded: str) -> None:
    with open_source(uploaded, local_root=None, aws_conn_id=S3_CONN_ID) as source:
        assert source.info.location == uploaded
        assert source.info.size == len(CSV)
        assert source.info.version.strip('"')
        assert str(sum_columns(source.stream).columns[0].sum) == TENTH_SUM
        assert source.resumes == 0


def test_an_s3_download_cut_twice_is_summed_exactly_and_reports_two_resumes(
    uploaded: str, flaky_s3: tuple[str, FaultyS3Proxy]
) -> None:
    conn_id, proxy = flaky_s3
    proxy.inject(BUCKET, "in/grades.csv", Fault.CUT, Fault.CUT)
    with open_source(uploaded, local_root=None, aws_conn_id=conn_id, policy=IMPATIENT) as source:
        assert str(sum_columns(source.stream).columns[0].sum) == TENTH_SUM
        assert source.resumes == 2
    assert 0 < proxy.gets[1].start < proxy.gets[2].start


def test_an_s3_object_replaced_during_the_read_is_the_problem_source_changed(
    uploaded: str, flaky_s3: tuple[str, FaultyS3Proxy]
) -> None:
    conn_id, proxy = flaky_s3
    client = s3_hook(S3_CONN_ID).get_conn()
    client.put_object(Bucket=BUCKET, Key="in/replaced.csv", Body=CSV)
    proxy.inject(BUCKET, "in/replaced.csv", Fault.CUT)
    location = f"s3://{BUCKET}/in/replaced.csv"

    def read_while_replacing() -> None:
        with open_source(location, local_root=None, aws_conn_id=conn_id, policy=IMPATIENT) as source:
            source.stream.read(1000)
            client.put_object(Bucket=BUCKET, Key="in/replaced.csv", Body=CSV + b"1,2,3\n")
            source.stream.read()

    with pytest.raises(SourceChanged, match="replaced or deleted while it was read") as raised:
        read_while_replacing()
    assert raised.value.code == "source_changed"


@pytest.mark.parametrize("location", [f"s3://{BUCKET}/in/missing.csv", "s3://no-such-bucket-here/f.csv"])
def test_a_missing_s3_object_or_bucket_is_not_found(uploaded: str, location: str) -> None:
    with (
        pytest.raises(NotFound, match="does not exist"),
        open_source(location, local_root=None, aws_conn_id=S3_CONN_ID),
    ):
        pass


def test_s3_is_refused_when_no_connection_is_configured(tree: Path) -> None:
    with (
        pytest.raises(StorageNotConfigured, match="S3 is not enabled"),
        open_source("s3://bucket/f.csv", local_root=tree, aws_conn_id=None),
    ):
        pass
