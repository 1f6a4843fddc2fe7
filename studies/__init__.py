"""The stylestudy Django app: studies, stimuli, participants, analysis."""
