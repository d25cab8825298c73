"""The node library: one file per node family; the registry loads every module here."""
