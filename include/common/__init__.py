"""Building blocks shared by every pipeline: database access, HTTP, run intervals."""
