"""Rate control: link meters -> link samples -> the controller -> decisions the link monitor applies."""
