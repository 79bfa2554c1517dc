"""The payroll module's use cases, one module per area: ``configuration`` (cycles, plans,
points), ``generation`` (payrolls and their instructions; ``createPayroll``), ``lifecycle``
(approve, reject, send, close, delete) and ``selectors`` (what a user may see)."""
