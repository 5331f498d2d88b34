"""Property-based fuzzing (Hypothesis): any input gives a typed ``RPKitError`` or success, never an
unhandled exception; through the Litestar app never a 500, a session cookie or a request to the
OP for bad input.

* ``test_callback_core.py`` — ``flow.check_callback`` against a model of its documented checks.
* ``test_routes.py`` — the callback (query and form_post), login and logout routes.
* ``test_tokens.py`` — compact-JWS garbage, signed claims and headers of any shape, through the
  ID-token, access-token and logout-token paths of ``TokenValidator``.
* ``test_documents.py`` — JWKS and discovery documents of any shape, any status and
  ``Cache-Control``.
* ``test_backchannel_logout.py`` — the back-channel logout route's form body.
* ``test_known_bugs.py`` — minimal regression tests for the crashes found here (the property
  tests cover those inputs too), and ``xfail(strict=True)`` reproductions of the bugs not fixed
  yet, with the predicates that keep the property tests off them.

Passwordless request bodies (the Scalekit plugin's OTP and magic-link routes) are not fuzzed yet:
add ``test_passwordless.py`` here, decorate each property test with ``@fuzz(n)`` from
``_budget.py`` under ``@given``, and reuse ``strategies.bodies`` / ``strategies.json_bytes``.

Budgets: each test's ``@fuzz(n)``; the session prints the total. ``RPKIT_FUZZ_SCALE=10`` runs ten
times as many (still derandomized) examples.
"""
