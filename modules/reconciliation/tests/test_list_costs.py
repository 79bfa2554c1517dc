"""The reconciliation lists cost the same statements for one row as for a page (the core's
``tests/test_list_query_counts.py`` names these lists here: its shared dataset pays no one)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from modules.reconciliation.models import Mismatch, ReportFile

pytestmark = pytest.mark.django_db

HEADER = ["reference", "status", "transaction_id", "amount", "currency", "date", "account"]

LISTS = {
    "reconciliationMismatch": "id uuid dateCreated dateUpdated version reference detail comment klass status "
                              "resolution assignee paymentId payroll { id name } history { action }",
    "csvReconciliationUpload": "id uuid fileName rows stored dateCreated status source error jsonExt "
                               "payroll { id name }",
}


def statements(api: Any, name: str, fields: str, first: int) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        data = api.ok(f"query($n: Int) {{ {name}(first: $n) {{ totalCount edges {{ node {{ {fields} }} }} }} }}",
                      {"n": first})
    return len(captured.captured_queries), len(data[name]["edges"])


def test_reconciliation_lists_cost_the_same_for_one_row_and_a_page(sent_payroll, provider_files, upload_result, gql):
    sent = sent_payroll
    a, b, c, d, *_ = sent.references
    disputed = [[a, "PAID", "TX-A", sent.amounts[a] - 500, "BIF", "2026-01-15", sent.phones[a]],
                [b, "PAID", "TX-B", sent.amounts[b], "USD", "2026-01-15", sent.phones[b]],
                [c, "PAID", "TX-C", sent.amounts[c], "BIF", "2026-01-15", "+25771999999"]]
    upload_result(sent.user, provider_files.csv(HEADER, disputed), point="BANK")
    upload_result(sent.user, provider_files.csv(HEADER, [[d, "PAID", "TX-D", sent.amounts[d], "BIF", "2026-01-15",
                                                          sent.phones[d]]]), point="BANK")
    assert Mismatch.objects.count() >= 3 and ReportFile.objects.count() >= 2
    api = gql(sent.user)
    for name, fields in LISTS.items():
        one, rows_one = statements(api, name, fields, 1)
        page, rows_page = statements(api, name, fields, 100)
        assert rows_one == 1 and rows_page >= 2, (name, rows_one, rows_page)
        assert one == page, f"{name}: {one} statements for one row, {page} for {rows_page}"
