"""What every test uses: the servers and databases (`servers`, `db`), the Ray session and the
partition actors (`engine`), Redis streams as a test sees them (`streams`), tenants, workflows
and event envelopes (`factories`), problem documents (`problems`), a TCP proxy that cuts a
server off (`proxy`), `hairtrigger up` as a process (`up`), and waiting (`wait`).

conftest.py files declare fixtures that call into these modules; tests import from here, never
from a conftest."""
