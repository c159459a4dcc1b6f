"""The browser lab (Gradio). UI only: every action goes through ``app.controller.LabController``."""
