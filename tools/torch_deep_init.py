#!/usr/bin/env python3
"""Why the `deep` preset is He-initialised: trains its layers in PyTorch on the first 5,000
Fashion-MNIST training images for two epochs (SGD lr 0.01, momentum 0.9, batch 32, one thread),
once with PyTorch's default init and once with He init (kaiming_uniform_, nonlinearity relu,
zero biases), and prints the training loss, accuracy and conv1's weight-gradient norm.

    /usr/bin/python3 tools/torch_deep_init.py [DATA_DIR]
"""
import torch, torch.nn as nn, torch.nn.functional as F, gzip, numpy as np, sys
torch.set_num_threads(1)
torch.manual_seed(1)
def idx(p):
    with gzip.open(p) if p.endswith('.gz') else open(p,'rb') as f: d=f.read()
    nd=d[3]; dims=[int.from_bytes(d[4+4*i:8+4*i],'big') for i in range(nd)]
    return np.frombuffer(d,dtype=np.uint8,offset=4+4*nd).reshape(dims)
import glob,os
root=sys.argv[1] if len(sys.argv) > 1 else '/usr/share/datasets/fashion-mnist'
f=lambda n: sorted(glob.glob(os.path.join(root,n+'*')))[0]
X=torch.tensor(idx(f('train-images'))[:5000],dtype=torch.float32).unsqueeze(1)/255; Y=torch.tensor(idx(f('train-labels'))[:5000].astype(np.int64))
def net(he):
    L=[];c=1
    for i,w in enumerate([16,16,16,16,32,32,32,32]):
        conv=nn.Conv2d(c,w,3,padding=1)
        if he: nn.init.kaiming_uniform_(conv.weight,nonlinearity='relu'); nn.init.zeros_(conv.bias)
        L+=[conv,nn.ReLU()]; c=w
        if i in (3,7): L.append(nn.MaxPool2d(2))
    L+=[nn.Flatten(),nn.Linear(32*49,10)]
    return nn.Sequential(*L)
for he in (False,True):
    torch.manual_seed(1); m=net(he); opt=torch.optim.SGD(m.parameters(),lr=0.01,momentum=0.9)
    for ep in range(2):
        perm=torch.randperm(5000); tot=0;cor=0
        for b in range(0,5000,32):
            i=perm[b:b+32]; out=m(X[i]); loss=F.cross_entropy(out,Y[i]); opt.zero_grad(); loss.backward(); opt.step()
            tot+=loss.item()*len(i); cor+=(out.argmax(1)==Y[i]).sum().item()
        g=m[0].weight.grad.norm().item()
        print(f"{'he' if he else 'default'} epoch {ep+1}: train loss {tot/5000:.4f} acc {cor/50:.1f}% |dconv1.w| {g:.3e}", flush=True)
