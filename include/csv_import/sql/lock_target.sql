-- Publishers of one target take turns; readers go on reading the published rows meanwhile.
LOCK TABLE {target} IN SHARE ROW EXCLUSIVE MODE
