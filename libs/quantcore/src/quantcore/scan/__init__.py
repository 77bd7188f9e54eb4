"""Scanner plumbing shared by the scanner and ranker services (and backtests): turning stored
rows into the arrays quantcore.math works on, and the decisions' rows back. No formulas here."""
