"""Stand-in for the Heroku Platform API, for tests only (it is not Heroku).

A local HTTP server that keeps state and behaves as Heroku documents, held to
the official Platform API schema, and that really builds, releases and runs
the app it is given. See README.md in this directory.
"""
