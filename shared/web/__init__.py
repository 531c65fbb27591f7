"""What every service with server-rendered pages shares (review's console, intake's portal)."""
