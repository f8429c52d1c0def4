from __future__ import annotations

from django.urls import path, re_path

from signals.taxii.api import (
    API_ROOT,
    TaxiiApiRootApi,
    TaxiiCollectionGetApi,
    TaxiiCollectionListApi,
    TaxiiDiscoveryApi,
    TaxiiManifestListApi,
    TaxiiNotFoundApi,
    TaxiiObjectGetApi,
    TaxiiObjectListApi,
    TaxiiStatusGetApi,
    TaxiiVersionListApi,
)

collection = f"{API_ROOT}/collections/<str:collection_id>/"
obj = collection + "objects/<str:object_id>/"

urlpatterns = [
    path("", TaxiiDiscoveryApi.as_view(), name="taxii-discovery"),
    path(f"{API_ROOT}/", TaxiiApiRootApi.as_view(), name="taxii-api-root"),
    path(f"{API_ROOT}/collections/", TaxiiCollectionListApi.as_view(), name="taxii-collections"),
    path(collection, TaxiiCollectionGetApi.as_view(), name="taxii-collection"),
    path(collection + "objects/", TaxiiObjectListApi.as_view(), name="taxii-objects"),
    path(obj, TaxiiObjectGetApi.as_view(), name="taxii-object"),
    path(obj + "versions/", TaxiiVersionListApi.as_view(), name="taxii-versions"),
    path(collection + "manifest/", TaxiiManifestListApi.as_view(), name="taxii-manifest"),
    path(f"{API_ROOT}/status/<str:status_id>/", TaxiiStatusGetApi.as_view(), name="taxii-status"),
    # Anything else that ends in a slash is a TAXII 404; other paths are first redirected to
    # their slashed form (TAXII URLs end in '/').
    re_path(r"^.*/$", TaxiiNotFoundApi.as_view(), name="taxii-not-found"),
]
