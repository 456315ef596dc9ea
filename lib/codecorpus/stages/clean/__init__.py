"""The `clean` stage: exact dedup, CodeParrot quality filters, licences, secrets and
decontamination, each drop named by a reason (`filters.FILTERS` holds them, in order)."""
