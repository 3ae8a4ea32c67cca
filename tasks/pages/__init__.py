"""Server-rendered pages: dashboard, task timeline, prompt statistics and the tool registry."""
