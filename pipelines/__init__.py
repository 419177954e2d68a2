"""Pure logic of Hairtrigger: catalog, filter language, validation. No I/O lives here."""
