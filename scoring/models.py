# Brand voice, scorers and scores arrive with issue 5.
