"""The instruction table's reference check (migration 0004) trusts the generation statement.

The generation statement guarantees what the check looks for: its payroll was created in the
same transaction, its payment points are held FOR SHARE, its recipients and households come
from joins over rows that exist (foreign keys of ``individual``). At national scale the check
still reads back the 315,000 new rows and anti-joins them with a million people. Generation
sets the transaction-local ``coremis.payroll_generation`` to ``on`` for its one statement and
back to '' right after (``services/generation.py``); every other write gets the full check.

Never paying twice does not rest on this check: the one-live-payment-per-cycle unique index
is untouched, and generations of a cycle are serialised by an advisory lock.
"""

from django.db import migrations

CHECK = """
CREATE OR REPLACE FUNCTION payroll_instruction_references_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    IF current_setting('coremis.payroll_generation', true) = 'on' THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(
        (SELECT 'payroll ' || n.payroll_id FROM (SELECT DISTINCT payroll_id FROM new_rows) n
          WHERE NOT EXISTS (SELECT 1 FROM payroll_payroll x WHERE x.id = n.payroll_id) LIMIT 1),
        (SELECT 'payment point ' || n.payment_point_id FROM (SELECT DISTINCT payment_point_id FROM new_rows) n
          WHERE NOT EXISTS (SELECT 1 FROM payroll_paymentpoint x WHERE x.id = n.payment_point_id) LIMIT 1),
        (SELECT 'individual ' || n.individual_id FROM new_rows n
          WHERE NOT EXISTS (SELECT 1 FROM individual_individual x WHERE x.id = n.individual_id) LIMIT 1),
        (SELECT 'group ' || n.group_id FROM new_rows n
          WHERE n.group_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM individual_group x WHERE x.id = n.group_id) LIMIT 1))
    INTO missing;
    IF missing IS NOT NULL THEN
        RAISE foreign_key_violation USING MESSAGE = 'payment instruction refers to a missing ' || missing;
    END IF;
    RETURN NULL;
END $$;
"""

# the function as migration 0004 created it
FULL_CHECK = """
CREATE OR REPLACE FUNCTION payroll_instruction_references_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    SELECT coalesce(
        (SELECT 'payroll ' || n.payroll_id FROM (SELECT DISTINCT payroll_id FROM new_rows) n
          WHERE NOT EXISTS (SELECT 1 FROM payroll_payroll x WHERE x.id = n.payroll_id) LIMIT 1),
        (SELECT 'payment point ' || n.payment_point_id FROM (SELECT DISTINCT payment_point_id FROM new_rows) n
          WHERE NOT EXISTS (SELECT 1 FROM payroll_paymentpoint x WHERE x.id = n.payment_point_id) LIMIT 1),
        (SELECT 'individual ' || n.individual_id FROM new_rows n
          WHERE NOT EXISTS (SELECT 1 FROM individual_individual x WHERE x.id = n.individual_id) LIMIT 1),
        (SELECT 'group ' || n.group_id FROM new_rows n
          WHERE n.group_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM individual_group x WHERE x.id = n.group_id) LIMIT 1))
    INTO missing;
    IF missing IS NOT NULL THEN
        RAISE foreign_key_violation USING MESSAGE = 'payment instruction refers to a missing ' || missing;
    END IF;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("payroll", "0009_payment_place")]

    operations = [migrations.RunSQL(CHECK, FULL_CHECK)]
