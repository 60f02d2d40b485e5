"""The simulator's trading side: accounts, matching, the order API, the user-data stream."""
