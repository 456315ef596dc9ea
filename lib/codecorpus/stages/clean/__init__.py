"""The `clean` stage: exact dedup, licences, the opt-out list, CodeParrot quality filters,
secrets and decontamination (exact substrings and token n-grams), each drop named by a reason
(`filters.FILTERS` holds them, in order)."""
