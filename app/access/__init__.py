"""Who may talk to the API, who is calling, and what each route lets them do."""
