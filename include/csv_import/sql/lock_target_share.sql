-- Publishers wait while the target is counted, so that its rows and the ledger agree.
LOCK TABLE {target} IN SHARE MODE
