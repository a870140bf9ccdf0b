"""The historical tier's read side: SQL over the Parquet layout (:mod:`.query`) and the preview
of Kalshi's public daily market-data report (:mod:`.report_preview`)."""
