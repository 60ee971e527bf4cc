"""Every request and response body of the API, one module per area.

Request models forbid unknown fields (a misspelt field is an error, not ignored); response
models are read from the records the services return (``from_attributes``), so a record's
field is named in its record and, where the API names it differently, in one alias here.
Times are ISO 8601 datetimes in UTC everywhere.
"""
