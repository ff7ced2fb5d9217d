"""Loading PyTorch EDVR checkpoints without torch: safe .pth reader, key maps, inference."""
