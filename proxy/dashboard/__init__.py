"""The live web dashboard: the page's static files, its feed (`/stats/stream`) and its sessions."""
