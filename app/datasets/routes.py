"""The dataset viewer API, in the shape of Hugging Face's datasets-server, under
`/api/datasets-server`: `/is-valid`, `/splits`, `/first-rows`, `/rows`, `/search`, `/filter`,
`/size`, `/info`, `/parquet`, plus `/assets` (the bytes of an image cell) and `/parquet-file`
(a converted file). Every route takes `dataset=ns/name` and an optional `revision` (default
`main`); answers carry `X-Revision: <commit sha>` as the Hub's viewer does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from app.datasets import views
from app.datasets.service import RevisionIndex
from app.deps import FactoryDep, PrincipalDep, SessionDep, SettingsDep, ViewerDep

PREFIX = "/api/datasets-server"
MAX_PAGE_ROWS = 100  # the Hub's limit for `length`
MAX_OFFSET = 10**12
router = APIRouter(prefix=PREFIX, tags=["dataset viewer"])
Dataset = Annotated[str, Query(min_length=3, max_length=200, pattern=r"^[^/]+/[^/]+$")]
RevisionParam = Annotated[str | None, Query(max_length=200)]
Config = Annotated[str | None, Query(max_length=200)]
Split = Annotated[str | None, Query(max_length=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Length = Annotated[int, Query(ge=0, le=MAX_PAGE_ROWS)]


def base_url(request: Request, settings: SettingsDep) -> str:
    return settings.public_url or str(request.base_url).rstrip("/")


BaseUrl = Annotated[str, Depends(base_url)]


def open_index(
    viewer: ViewerDep,
    session: SessionDep,
    principal: PrincipalDep,
    dataset: Dataset,
    revision: RevisionParam = None,
) -> RevisionIndex:
    """The revision's index, after the read permission check (private: RepoNotFound)."""
    return viewer.index(session, viewer.open_revision(session, principal, dataset, revision))


IndexDep = Annotated[RevisionIndex, Depends(open_index)]


def answer(index: RevisionIndex, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers={"X-Revision": index.revision.commit_sha})


@router.get("/is-valid")
def is_valid(index: IndexDep) -> JSONResponse:
    return answer(index, views.is_valid(index))


@router.get("/splits")
def splits(viewer: ViewerDep, index: IndexDep, factory: FactoryDep) -> JSONResponse:
    body = views.splits(viewer, index)
    viewer.schedule_export(factory, index)
    return answer(index, body)


@router.get("/first-rows")
def first_rows(
    viewer: ViewerDep, index: IndexDep, url: BaseUrl, config: Config = None, split: Split = None
) -> JSONResponse:
    return answer(index, views.first_rows(viewer, index, url, config, split))


@router.get("/rows")
def rows(
    viewer: ViewerDep,
    index: IndexDep,
    url: BaseUrl,
    config: Config = None,
    split: Split = None,
    offset: Offset = 0,
    length: Length = MAX_PAGE_ROWS,
) -> JSONResponse:
    return answer(index, views.rows(viewer, index, url, config, split, offset, length))


@router.get("/search")
def search(
    viewer: ViewerDep,
    index: IndexDep,
    url: BaseUrl,
    query: Annotated[str, Query(min_length=1, max_length=500)],
    config: Config = None,
    split: Split = None,
    offset: Offset = 0,
    length: Length = MAX_PAGE_ROWS,
) -> JSONResponse:
    page = views.Paging(offset, length)
    return answer(index, views.search(viewer, index, url, config, split, query, page))


@router.get("/filter")
def filter_rows(
    viewer: ViewerDep,
    index: IndexDep,
    url: BaseUrl,
    where: Annotated[str, Query(min_length=1, max_length=2000)],
    config: Config = None,
    split: Split = None,
    offset: Offset = 0,
    length: Length = MAX_PAGE_ROWS,
) -> JSONResponse:
    page = views.Paging(offset, length)
    return answer(index, views.filter_rows(viewer, index, url, config, split, where, page))


@router.get("/size")
def size(viewer: ViewerDep, index: IndexDep, url: BaseUrl, config: Config = None) -> JSONResponse:
    return answer(index, views.size(viewer, index, url, config))


@router.get("/info")
def info(viewer: ViewerDep, index: IndexDep, url: BaseUrl, config: Config = None) -> JSONResponse:
    return answer(index, views.info(viewer, index, url, config))


@router.get("/parquet")
def parquet(
    viewer: ViewerDep, index: IndexDep, url: BaseUrl, factory: FactoryDep, config: Config = None
) -> JSONResponse:
    body = views.parquet_files(viewer, index, url, config)
    viewer.schedule_export(factory, index)
    return answer(index, body)


@router.get("/parquet-file")
def parquet_file(
    viewer: ViewerDep, index: IndexDep, path: Annotated[str, Query(max_length=1000)]
) -> Response:
    """The parquet conversion of one csv/json/txt file of the revision."""
    local = viewer.converted_file(index, views.data_file(index, path))
    name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0] + ".parquet"
    headers = {"X-Revision": index.revision.commit_sha}
    return FileResponse(
        local, media_type="application/octet-stream", filename=name, headers=headers
    )


@router.get("/assets")
def assets(
    viewer: ViewerDep,
    index: IndexDep,
    url: BaseUrl,
    row: Annotated[int, Query(ge=0, le=MAX_OFFSET)],
    column: Annotated[str, Query(max_length=500)],
    config: Config = None,
    split: Split = None,
) -> Response:
    """The bytes of a binary cell (an image stored in a parquet file), for `<img src>`."""
    data = views.cell_bytes(viewer, index, url, config, split, row, column)
    headers = {"X-Revision": index.revision.commit_sha, "Cache-Control": "private, max-age=86400"}
    return Response(data, media_type=views.sniff_media_type(data), headers=headers)
