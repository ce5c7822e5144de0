"""Files that ship in the deployment package as they are (see export/deploy.py); `recognize.py` needs
only openvino, opencv-python and numpy, never action_rec."""
